using IlgpuDiffusion.Diffusion.Blocks;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests;

public class BlockTests
{
    [Fact]
    public void Sinusoidal_embedding_is_sines_then_cosines()
    {
        var embedding = TimeEmbedding.Sinusoidal([0, 1], 4, Device.Cpu).ToArray();
        float[] expected = [0, 0, 1, 1, MathF.Sin(1), MathF.Sin(0.01f), MathF.Cos(1), MathF.Cos(0.01f)];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], embedding[i], 6);
    }

    [Fact]
    public void Kl_divergence_is_zero_at_the_prior_and_summed_per_image()
    {
        // (B=2, 2·z=2, 1, 1): mean 0 / logvar 0 is the prior; mean 1 adds 0.5 per latent value
        Assert.Equal(0f, Vae.KlDivergence(Tensor.Zeros([2, 2, 1, 1])).Item(), 6);
        var meanOne = Tensor.FromArray([1f, 0f, 1f, 0f], [2, 2, 1, 1]);
        Assert.Equal(0.5f, Vae.KlDivergence(meanOne).Item(), 6);
    }

    [Fact]
    public void Vae_sample_draws_a_latent_of_half_the_channels()
    {
        var encoderOutput = Tensor.FromArray([.. Enumerable.Repeat(2f, 4), .. Enumerable.Repeat(0f, 4)], [1, 2, 2, 2]);
        var a = Vae.Sample(encoderOutput, new Generator(7));
        var b = Vae.Sample(encoderOutput, new Generator(7));
        Assert.Equal([1, 1, 2, 2], a.Shape);
        Assert.Equal(a.ToArray(), b.ToArray());
        var eps = Tensor.Randn([1, 1, 2, 2], new Generator(7));
        Assert.All(eps.ToArray().Zip(a.ToArray()), p => Assert.Equal(2 + p.First, p.Second, 5));
    }
}
