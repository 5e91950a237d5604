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
                          "models (training and sampling steps of the reference configurations); repeatable",
            DefaultValueFactory = _ => ["engine", "conv"],
            AllowMultipleArgumentsPerToken = true,
        };
        suites.AcceptOnlyFromAmong("engine", "conv", "models"); // checked before any suite runs
        var config = new Option<string>("--config")
        {
            Description = "models suite: mnist (configs/mnist.json at its batches) | celebhq (configs/celebhq.json at CPU-sized " +
                          "batches: 1, 2, 1 sample) | all | a config file (timed at its own batches)",
            DefaultValueFactory = _ => "all",
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
        var warmup = new Option<int?>("--warmup") { Description = "models suite: untimed runs per step (default: mnist 2, celebhq 1)" };
        var runs = new Option<int?>("--runs") { Description = "models suite: least number of timed runs per step (default 3)" };
        var minSeconds = new Option<double?>("--min-seconds")
        {
            Description = "models suite: time each step for at least this long, up to 50 runs (default: mnist 3, celebhq 0)",
        };
        var json = new Option<FileInfo?>("--json") { Description = "models suite: also write its results to this file" };
        var command = new Command("bench", "Measure executor, layer and model speed on a device")
        {
            device, suites, config, lpips, profile, warmup, runs, minSeconds, json,
        };
        command.SetAction(parse =>
        {
            IReadOnlyList<ModelBenchConfiguration> configurations = [];
            if (parse.GetValue(suites)!.Contains("models"))
            {
                try
                {
                    configurations = ModelBenchConfiguration.Select(parse.GetValue(config)!);
                }
                catch (ArgumentException e)
                {
                    Console.Error.WriteLine($"error: {e.Message}");
                    return 2;
                }
            }
            var dev = CommonOptions.Open(parse.GetValue(device)! + (parse.GetValue(profile) ? "+profile" : ""));
            if (dev == null) return 2;
            Console.WriteLine($"bench on {dev.Name}: {dev.Info.Description}");
            foreach (var suite in parse.GetValue(suites)!)
            {
                switch (suite)
                {
                    case "engine": EngineBenchmarks.Run(dev); break;
                    case "conv": ConvBenchmarks.Run(dev); break;
                    case "models":
                        ModelBenchmarks.Run(dev, configurations, parse.GetValue(lpips)!, timing => new StepTiming(
                                parse.GetValue(warmup) ?? timing.Warmup, parse.GetValue(runs) ?? timing.Runs,
                                parse.GetValue(minSeconds) ?? timing.MinSeconds),
                            parse.GetValue(json)?.FullName);
                        break;
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
