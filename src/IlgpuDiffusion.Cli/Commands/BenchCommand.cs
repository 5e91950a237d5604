using System.CommandLine;
using IlgpuDiffusion.Cli.Bench;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary><c>ildm bench</c>: prints speed numbers (not a test: nothing is asserted).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var device = CommonOptions.Device();
        var suites = new Option<string[]>("--suite")
        {
            Description = "engine (SGEMM, elementwise) | conv (mnist autoencoder convolutions); repeatable",
            DefaultValueFactory = _ => ["engine", "conv"],
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("bench", "Measure executor and layer speed on a device") { device, suites };
        command.SetAction(parse =>
        {
            var dev = CommonOptions.Open(parse.GetValue(device)!);
            if (dev == null) return 2;
            Console.WriteLine($"bench on {dev.Name}: {dev.Info.Description}");
            foreach (var suite in parse.GetValue(suites)!)
            {
                switch (suite)
                {
                    case "engine": EngineBenchmarks.Run(dev); break;
                    case "conv": ConvBenchmarks.Run(dev); break;
                    default:
                        Console.Error.WriteLine($"error: unknown suite '{suite}' (engine, conv)");
                        return 2;
                }
            }
            return 0;
        });
        return command;
    }
}
