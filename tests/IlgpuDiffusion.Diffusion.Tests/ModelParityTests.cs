using System.Diagnostics;
using IlgpuDiffusion.Diffusion.Parity;
using IlgpuDiffusion.Tensors.Parity;
using Xunit.Abstractions;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>Every model, time-embedding and training case of the reference fixtures, on every executor
/// (ILGPU's CPU accelerator only where it is fast enough).</summary>
public class ModelParityTests(ITestOutputHelper output)
{
    private static readonly ParityRunner Runner = new(ModelHandlers.All);

    /// <summary>The cases ILGPU's CPU accelerator finishes within seconds on a 2-core machine (measured with
    /// `ildm parity --device ilgpu-cpu`: vqvae_tiny 3.5 s, unet_tiny 3.3 s, train_unet_tiny_3steps 8.6 s,
    /// vqvae_mnist_config 12.6 s). The attention-heavy larger ones pass there too but take 30 s to 2 minutes
    /// (vqvae_attn 32 s, unet_mnist_config 97 s, vqvae_celebhq_config 118 s), so the suite runs them on cpu.</summary>
    private static readonly HashSet<string> FastEnoughOnIlgpuCpu =
        ["time_embedding", "vqvae_tiny_pth", "vqvae_tiny", "vae_tiny", "unet_tiny", "train_vqvae_tiny_3steps", "train_unet_tiny_3steps", "vqvae_mnist_config"];

    public static TheoryData<string, string> ModelCasesOnDevices()
    {
        var data = new TheoryData<string, string>();
        foreach (var device in TestDevices.Names)
            foreach (var c in ParityCase.ReadManifest(Fixtures.ParityFolder))
                if (Runner.HandlerFor(c.Name) != null && (device != "ilgpu-cpu" || FastEnoughOnIlgpuCpu.Contains(c.Name)))
                    data.Add(c.Name, device);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(ModelCasesOnDevices))]
    public void Model_case_matches_the_reference(string caseName, string device)
    {
        var dev = TestDevices.Open(device);
        var c = ParityCase.ReadManifest(Fixtures.ParityFolder).Single(x => x.Name == caseName);
        var watch = Stopwatch.StartNew();
        var result = Runner.Run(c, dev);
        Assert.True(result.Error == null && result.Comparisons.Count > 0, result.Describe());
        var roundOff = result.Comparisons.Where(x => IsRoundOffOfZero(c, x)).ToList();
        var compared = result.Comparisons.Except(roundOff).ToList();
        var worst = compared.Where(x => !x.Exact).MaxBy(x => x.Error);
        output.WriteLine($"{caseName} on {device}: worst rel L2 {worst?.Error:E2} ({worst?.Name}), tolerance {c.Tolerance:E0}, {watch.Elapsed.TotalSeconds:F1} s" +
            (roundOff.Count > 0 ? $"; zero gradients at round-off: {string.Join(", ", roundOff.Select(x => x.Name))}" : ""));
        var failures = compared.Where(x => x.Exact ? x.Error != 0 : x.Error > c.Tolerance).ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures.Select(x => $"  {x.Name}: {x.Error:E2}")));
    }

    /// <summary>
    /// Some gradients are exactly zero in exact arithmetic: a conv bias whose output only feeds GroupNorm
    /// groups of a single channel (the norm removes each channel's mean; vqvae_mnist_config's last UpBlock).
    /// The float64 reference stores round-off (~1e-14) there, which the relative error cannot tolerate and
    /// float32 cannot reproduce; such an entry passes when the computed value is float32 round-off too,
    /// measured against the largest gradient of the case.
    /// </summary>
    private static bool IsRoundOffOfZero(ParityCase c, TensorComparison comparison)
    {
        if (!comparison.Name.StartsWith("gradsum.", StringComparison.Ordinal)) return false;
        double largest = c.Tensors.Where(t => t.Key.StartsWith("gradsum.", StringComparison.Ordinal)).Max(t => (double)t.Value.Floats![0]);
        double reference = Math.Sqrt(c.Tensor(comparison.Name).Floats!.Sum(v => (double)v * v));
        double difference = comparison.Error * Math.Max(reference, 1e-12);
        return reference <= 1e-10 * largest && difference <= 1e-6 * largest;
    }

    [Fact]
    public void Every_model_kind_has_a_case_and_a_handler()
    {
        var names = ParityCase.ReadManifest(Fixtures.ParityFolder).Select(c => c.Name).ToList();
        foreach (var kind in new[] { "vqvae_tiny", "vqvae_attn", "vqvae_mnist_config", "vqvae_celebhq_config", "vqvae_tiny_pth", "vae_tiny",
                     "unet_tiny", "unet_mnist_config", "unet_celebhq_config", "time_embedding", "train_vqvae_tiny_3steps", "train_unet_tiny_3steps" })
            Assert.Contains(names, n => n == kind && Runner.HandlerFor(n) != null);
    }
}
