using System.Text.Json;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.IO;
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

    /// <summary>A full gradient tensor the reference holds at round-off (1e-17 of the largest gradient) is measured
    /// against the case's largest gradient norm, like a <c>gradsum.</c> entry; a real gradient keeps the relative error.</summary>
    [Fact]
    public void Full_gradients_zero_in_exact_arithmetic_are_measured_against_the_largest()
    {
        string folder = Directory.CreateTempSubdirectory("parity-zero-grad").FullName;
        try
        {
            float[] large = [3f, -4f, 1f], roundOff = [1e-17f, -2e-17f, 0f];
            SafeTensors.Write(Path.Combine(folder, "case.safetensors"), new Dictionary<string, HostTensor>
            {
                ["grad.param.conv.weight"] = HostTensor.FromFloats([3], large),
                ["grad.param.conv.bias"] = HostTensor.FromFloats([3], roundOff),
            });
            var entry = new { @case = "unet_one_channel_groups", file = "case.safetensors", rel_l2_tolerance = 1e-4 };
            File.WriteAllText(Path.Combine(folder, "manifest.json"), JsonSerializer.Serialize(new[] { entry }));
            var c = ParityCase.ReadManifest(folder).Single();
            var computed = new Dictionary<string, Tensor>
            {
                ["grad.param.conv.weight"] = Tensor.FromArray([3f, -4f, 1.001f], [3], Device.Cpu),
                ["grad.param.conv.bias"] = Tensor.FromArray([2e-9f, 0f, -1e-9f], [3], Device.Cpu),
            };
            var comparisons = ParityRunner.Compare(c, computed).ToDictionary(x => x.Name);

            var bias = comparisons["grad.param.conv.bias"];
            Assert.NotNull(bias.Note);
            double largest = Math.Sqrt(large.Sum(v => (double)v * v));
            Assert.Equal(Math.Sqrt(2e-9 * 2e-9 + 1e-9 * 1e-9) / largest, bias.Error, 1e-3 * bias.Error);
            var weight = comparisons["grad.param.conv.weight"];
            Assert.Null(weight.Note);
            Assert.True(weight.Error > 1e-5, $"{weight.Error:E2}");
            Assert.Contains("1 gradient(s) zero", new ParityResult(c.Name, c.Tolerance, comparisons.Values.ToList()).Describe());
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>A gradient summary whose sum cancels (Σ g = 0.0025, Σ |g| = 3): under float32 accumulation a sum off by
    /// float32 rounding at the scale of Σ |g| passes, measured against the L1 norm, while the whole summary's relative L2
    /// error (float64 accumulation's metric) fails; a sum off by more than the tolerance of Σ |g|, or a wrong L2 norm,
    /// still fails.</summary>
    [Fact]
    public void Cancelling_gradient_sums_are_measured_against_the_L1_norm_under_float32_accumulation()
    {
        string folder = Directory.CreateTempSubdirectory("parity-cancelling-sum").FullName;
        try
        {
            float[] reference = [0.0076f, 0.0025f, 4e-4f];
            SafeTensors.Write(Path.Combine(folder, "case.safetensors"), new Dictionary<string, HostTensor>
            {
                ["gradsum.conv.weight"] = HostTensor.FromFloats([3], reference),
            });
            var entry = new { @case = "lpips_cancelling", file = "case.safetensors", rel_l2_tolerance = 1e-4 };
            File.WriteAllText(Path.Combine(folder, "manifest.json"), JsonSerializer.Serialize(new[] { entry }));
            var c = ParityCase.ReadManifest(folder).Single();
            ParityResult Check(float l2, float sum, GemmAccumulation accumulation) => new(c.Name, c.Tolerance, ParityRunner.Compare(c,
                new Dictionary<string, Tensor>
                {
                    ["gradsum.conv.weight"] = Tensor.FromArray([l2, sum, reference[2]], [3], Device.Cpu),
                    [CancellingGradientSum.L1Prefix + "conv.weight"] = Tensor.FromArray([3f], [1], Device.Cpu),
                }, accumulation));

            float rounded = reference[1] + 1e-6f, wrong = reference[1] + 5e-4f;
            var cancelling = Check(reference[0], rounded, GemmAccumulation.Float32);
            Assert.True(cancelling.Passed, cancelling.Describe());
            var sum = cancelling.Comparisons.Single(x => x.Note == CancellingGradientSum.Note);
            Assert.Equal(1e-6 / 3, sum.Error, 1e-2 * sum.Error);
            Assert.Contains("1 gradient sum(s) measured against the gradient's L1 norm", cancelling.Describe());
            Assert.False(Check(reference[0], rounded, GemmAccumulation.Float64).Passed);
            Assert.False(Check(reference[0], wrong, GemmAccumulation.Float32).Passed);
            Assert.False(Check(reference[0] * 1.001f, reference[1], GemmAccumulation.Float32).Passed);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
