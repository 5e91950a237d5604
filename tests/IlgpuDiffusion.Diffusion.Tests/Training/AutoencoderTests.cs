using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;
using static IlgpuDiffusion.Diffusion.Tests.ReferenceConfigs;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

public class AutoencoderTests
{
    /// <summary>8×8 single-channel images, two down-samplings to 2×2 latents of 3 channels.</summary>
    private static readonly ExperimentConfig Tiny = new(MnistDataset with { ImSize = 8 }, DefaultDiffusion,
        MnistAutoencoder with { DownChannels = [8, 8, 8], MidChannels = [8, 8], NormChannels = 4, NumHeads = 2 },
        MnistLdm, MnistTrain, "test");

    [Theory]
    [InlineData(false, "vqvae", new[] { "codebook", "commitment" })]
    [InlineData(true, "vae", new[] { "kl" })]
    public void The_factory_picks_the_kind_with_its_file_names_loss_terms_and_latent(bool vae, string kind, string[] terms)
    {
        using var model = IAutoencoder.Create(Device.Cpu, Tiny, vae);
        Assert.Equal(kind, model.Kind);
        Assert.Equal($"{kind}_autoencoder_ckpt", model.CheckpointStem);
        Assert.Equal($"{kind}_discriminator_ckpt", model.DiscriminatorStem);
        var x = Tensor.Randn([2, 1, 8, 8], new Generator(1));
        var (reconstruction, regularisation) = model.TrainingForward(x, MnistTrain, new Generator(2));
        Assert.Equal(x.Shape, reconstruction.Shape);
        Assert.Equal(terms, regularisation.Keys.Order(StringComparer.Ordinal));
        var z = model.EncodeLatent(x);
        Assert.Equal([2, 3, 2, 2], z.Shape);
        Assert.Equal(x.Shape, model.Decode(z).Shape);
    }

    [Fact]
    public void Only_the_vq_vae_has_a_codebook_whose_indices_it_reports()
    {
        using var vq = IAutoencoder.Create(Device.Cpu, Tiny, vae: false);
        using var kl = IAutoencoder.Create(Device.Cpu, Tiny, vae: true);
        Assert.IsNotAssignableFrom<ICodebookAutoencoder>(kl);
        var indices = Assert.IsAssignableFrom<ICodebookAutoencoder>(vq).CodebookIndices(Tensor.Randn([2, 1, 8, 8], new Generator(1)));
        Assert.Equal([2, 2, 2], indices.Shape);
        Assert.All(indices.ToIntArray(), i => Assert.InRange(i, 0, Tiny.Autoencoder.CodebookSize - 1));
    }
}
