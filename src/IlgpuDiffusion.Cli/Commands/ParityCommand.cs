using System.CommandLine;
using IlgpuDiffusion.Diffusion.Parity;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Parity;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary><c>ildm parity</c>: checks every case of a fixture folder (read from its manifest) and prints
/// one line per case; exits 1 when any case fails.</summary>
internal static class ParityCommand
{
    public static IReadOnlyList<IParityHandler> Handlers => [.. OpHandlers.All, .. ModelHandlers.All, .. AuxHandlers.All];

    public static Command Create()
    {
        var fixtures = new Option<DirectoryInfo>("--fixtures")
        {
            Description = "folder with manifest.json and the case files",
            Required = true,
        };
        var device = CommonOptions.Device();
        var only = new Option<string[]>("--case")
        {
            Description = "check only these cases (prefix match); repeatable",
            AllowMultipleArgumentsPerToken = true,
        };
        var accumulate = new Option<string>("--accumulate")
        {
            Description = "how matrix products accumulate: float64 (default: the arithmetic of the float64 references; " +
                          "float-float on devices without fp64) | float32 (what training runs; a gradient summary's sum " +
                          "is then measured against the gradient's L1 norm)",
            DefaultValueFactory = _ => "float64",
        };
        accumulate.AcceptOnlyFromAmong("float64", "float32");
        var verbose = new Option<bool>("--verbose") { Description = "also print every compared tensor of each case, worst first" };
        var command = new Command("parity", "Check ops and models against reference fixtures (relative L2 error per case)")
        {
            fixtures, device, only, accumulate, verbose,
        };
        command.SetAction(parse =>
        {
            var folder = parse.GetValue(fixtures)!;
            var dev = CommonOptions.Open(parse.GetValue(device)!);
            if (dev == null) return 2;
            IReadOnlyList<ParityCase> cases;
            try
            {
                cases = ParityCase.ReadManifest(folder.FullName);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            var filter = parse.GetValue(only) ?? [];
            var selected = cases.Where(c => filter.Length == 0 || filter.Any(f => c.Name.StartsWith(f, StringComparison.Ordinal))).ToList();
            if (selected.Count == 0)
            {
                Console.Error.WriteLine($"error: no case of {folder.FullName} starts with --case {string.Join(" | ", filter)}; "
                    + $"the cases are {string.Join(", ", cases.Select(c => c.Name))}");
                return 2;
            }
            var runner = new ParityRunner(Handlers);
            int failed = 0, total = 0;
            var accumulation = parse.GetValue(accumulate) == "float32" ? GemmAccumulation.Float32 : GemmAccumulation.Float64;
            string arithmetic = accumulation == GemmAccumulation.Float32 ? "float32 accumulation"
                : dev.Info.Float64 ? "float64 accumulation" : "float64 accumulation (float-float, device has no fp64)";
            Console.WriteLine($"parity: {folder.FullName} on {dev.Name}, {arithmetic} in matrix products");
            foreach (var c in selected)
            {
                var watch = System.Diagnostics.Stopwatch.StartNew();
                var result = runner.Run(c, dev, accumulation);
                total++;
                if (!result.Passed) failed++;
                Console.WriteLine($"{result.Describe()}  ({watch.Elapsed.TotalSeconds:F1} s)");
                if (parse.GetValue(verbose))
                    foreach (var x in result.Comparisons.OrderByDescending(x => x.Exact ? double.MaxValue * Math.Sign(x.Error) : x.Error))
                        Console.WriteLine(x.Exact
                            ? $"    {x.Name,-60} {x.Error} mismatches"
                            : $"    {x.Name,-60} {x.Error:E2}{(x.Note != null ? "  (" + x.Note + ")" : "")}");
            }
            Console.WriteLine($"{total - failed} passed, {failed} failed");
            return failed == 0 ? 0 : 1;
        });
        return command;
    }
}
