using IlgpuDiffusion.Tensors.Parity;

namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>Every op case of the reference fixtures, on every executor.</summary>
public class ParityTests
{
    public static string FixtureFolder => Fixtures.ParityFolder;

    private static readonly ParityRunner Runner = new(OpHandlers.All);

    public static TheoryData<string, string> OpCasesOnDevices()
    {
        var data = new TheoryData<string, string>();
        foreach (var device in TestDevices.Names)
            foreach (var c in ParityCase.ReadManifest(FixtureFolder))
                if (Runner.HandlerFor(c.Name) != null) data.Add(c.Name, device);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(OpCasesOnDevices))]
    public void Op_case_matches_the_reference(string caseName, string device)
    {
        var dev = TestDevices.Open(device);
        var c = ParityCase.ReadManifest(FixtureFolder).Single(x => x.Name == caseName);
        var result = Runner.Run(c, dev);
        Assert.True(result.Passed,
            result.Describe() + "\n" + string.Join("\n", result.Comparisons.Select(x => $"  {x.Name}: {x.Error:E2}")));
    }

    [Fact]
    public void Every_op_kind_named_by_the_issue_has_a_case_and_a_handler()
    {
        var names = ParityCase.ReadManifest(FixtureFolder).Select(c => c.Name).ToList();
        foreach (var prefix in new[] { "conv2d_", "conv_transpose2d_", "group_norm_", "batch_norm2d", "linear", "activations", "mha_self",
                     "mha_cross", "adam" })
            Assert.Contains(names, n => n.StartsWith(prefix, StringComparison.Ordinal) && Runner.HandlerFor(n) != null);
    }

    [Fact]
    public void Synthetic_weights_follow_the_rule()
    {
        // parameter 0, element 0: x = 0 → hash 0 → u = 0 → matrix value −sqrt(3/fan_in)
        var w = SyntheticWeights.Generate(0, "w", [2, 3]);
        Assert.Equal(-MathF.Sqrt(1f), w[0], 6);
        var bias = SyntheticWeights.Generate(0, "bias", [4]);
        Assert.Equal(-0.1f, bias[0], 6);
        var gain = SyntheticWeights.Generate(0, "norm.weight", [4]);
        Assert.Equal(0.5f, gain[0], 6);
        Assert.All(SyntheticWeights.Generate(3, "x.weight", [8, 4]), v => Assert.InRange(v, -MathF.Sqrt(0.75f), MathF.Sqrt(0.75f)));
    }
}
