using System.Diagnostics;
using IlgpuDiffusion.Diffusion.Parity;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Parity;
using Xunit.Abstractions;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>Every vector-quantisation, model, time-embedding and training case of the reference fixtures, on every
/// executor (ILGPU's CPU accelerator only where it is fast enough).</summary>
public class ModelParityTests(ITestOutputHelper output)
{
    private static readonly ParityRunner Runner = new(ModelHandlers.All);

    /// <summary>The cases ILGPU's CPU accelerator finishes within seconds on a 2-core machine (measured with
    /// `ildm parity --device ilgpu-cpu`: vqvae_tiny 3.5 s, unet_tiny 3.3 s, train_unet_tiny_3steps 8.6 s,
    /// vqvae_mnist_config 12.6 s). The attention-heavy larger ones pass there too but take 30 s to 2 minutes
    /// (vqvae_attn 32 s, unet_mnist_config 97 s, vqvae_celebhq_config 118 s), so the suite runs them on cpu. Of the
    /// conditional cases two tiny ones cover the class, text and mask paths there (5–30 s each on a loaded machine);
    /// cond_unet_class_mnist_config took 479 s and train_cond_unet_class_tiny_3steps 147 s on that loaded machine.</summary>
    private static readonly HashSet<string> FastEnoughOnIlgpuCpu =
    [
        "vq_quantize", "time_embedding", "vqvae_tiny_pth", "vqvae_tiny", "vae_tiny", "unet_tiny", "train_vqvae_tiny_3steps",
        "train_unet_tiny_3steps", "vqvae_mnist_config", "cond_unet_class_tiny", "cond_unet_text_image_tiny",
    ];

    public static TheoryData<string, string, GemmAccumulation> ModelCasesOnDevices() =>
        ParityTheory.Cases(Runner, FastEnoughOnIlgpuCpu.Contains);

    [SkippableTheory]
    [MemberData(nameof(ModelCasesOnDevices))]
    public void Model_case_matches_the_reference(string caseName, string device, GemmAccumulation accumulation)
    {
        var dev = TestDevices.Open(device);
        var c = ParityCase.ReadManifest(Fixtures.ParityFolder).Single(x => x.Name == caseName);
        var watch = Stopwatch.StartNew();
        var result = Runner.Run(c, dev, accumulation);
        output.WriteLine($"{result.Describe()}  ({watch.Elapsed.TotalSeconds:F1} s)");
        Assert.True(result.Error == null && result.Comparisons.Count > 0, result.Describe());
        var failures = result.Comparisons.Where(x => x.Exact ? x.Error != 0 : x.Error > c.Tolerance).ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures.Select(x => $"  {x.Name}: {x.Error:E2}")));
    }

    /// <summary>vqvae_mnist_config has conv biases whose gradient is zero in exact arithmetic; the runner measures
    /// exactly those against the case's largest gradient (<see cref="ParityRunner.Compare"/>), and
    /// only those: the reference values are round-off (&lt; 1e-10 of the largest) and ours are near zero too.</summary>
    [Fact]
    public void Gradients_zero_in_exact_arithmetic_are_named_and_small()
    {
        var c = ParityCase.ReadManifest(Fixtures.ParityFolder).Single(x => x.Name == "vqvae_mnist_config");
        var result = Runner.Run(c, Device.Cpu);
        var zeroNotes = result.Comparisons.Where(x => x.Note == ParityRunner.ZeroNote).ToList();
        var zeros = zeroNotes.Select(x => x.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["gradsum.decoder_layers.1.residual_input_conv.0.bias", "gradsum.decoder_layers.1.resnet_conv_first.0.2.bias",
            "gradsum.decoder_layers.1.resnet_conv_second.0.2.bias"], zeros);
        Assert.All(zeroNotes, x => Assert.True(x.Error < 1e-6, $"{x.Name}: {x.Error:E2}"));
    }

    [Fact]
    public void Every_model_kind_has_a_case_and_a_handler()
    {
        var names = ParityCase.ReadManifest(Fixtures.ParityFolder).Select(c => c.Name).ToList();
        string[] modelKinds =
        [
            "vq_quantize", "vqvae_tiny", "vqvae_attn", "vqvae_mnist_config", "vqvae_celebhq_config", "vqvae_tiny_pth",
            "vae_tiny", "unet_tiny", "unet_mnist_config", "unet_celebhq_config", "time_embedding",
            "train_vqvae_tiny_3steps", "train_unet_tiny_3steps", "cond_unet_class_tiny", "cond_unet_text_tiny", "cond_unet_image_tiny",
            "cond_unet_text_image_tiny", "cond_unet_class_mnist_config", "train_cond_unet_class_tiny_3steps",
        ];
        foreach (var kind in modelKinds)
            Assert.Contains(names, n => n == kind && Runner.HandlerFor(n) != null);
    }
}
