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
            Description = "engine (SGEMM, elementwise) | conv (mnist autoencoder convolutions) | " +
                          "models (training and sampling steps of the mnist config); repeatable",
            DefaultValueFactory = _ => ["engine", "conv"],
            AllowMultipleArgumentsPerToken = true,
        };
        var config = new Option<FileInfo>("--config")
        {
            Description = "config for the models suite (default configs/mnist.json: the reference mnist configuration)",
            DefaultValueFactory = _ => new FileInfo(Path.Combine("configs", "mnist.json")),
        };
        var lpips = new Option<string>("--lpips")
        {
            Description = "LPIPS network in the models suite's autoencoder step: vgg16 (the reference's; random weights) | " +
                          "resnet18 (the ONNX weights)",
            DefaultValueFactory = _ => "vgg16",
        };
        lpips.AcceptOnlyFromAmong("vgg16", "resnet18");
        var profile = new Option<bool>("--profile")
        {
            Description = "models suite: after each step, the most expensive executor primitives (timed with a wait after each call)",
        };
        var command = new Command("bench", "Measure executor, layer and model speed on a device")
        {
            device, suites, config, lpips, profile,
        };
        command.SetAction(parse =>
        {
            var dev = CommonOptions.Open(parse.GetValue(device)! + (parse.GetValue(profile) ? "+profile" : ""));
            if (dev == null) return 2;
            Console.WriteLine($"bench on {dev.Name}: {dev.Info.Description}");
            foreach (var suite in parse.GetValue(suites)!)
            {
                switch (suite)
                {
                    case "engine": EngineBenchmarks.Run(dev); break;
                    case "conv": ConvBenchmarks.Run(dev); break;
                    case "models": ModelBenchmarks.Run(dev, parse.GetValue(config)!.FullName, parse.GetValue(lpips)!); break;
                    default:
                        Console.Error.WriteLine($"error: unknown suite '{suite}' (engine, conv, models)");
                        return 2;
                }
            }
            return 0;
        });
        return command;
    }
}
