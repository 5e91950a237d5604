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

    /// <summary>The blocks leave the key bias out of attention: its true gradient is zero, and float32 round-off
    /// there would turn into full-size Adam steps.</summary>
    [Fact]
    public void Attention_layers_give_the_key_part_of_the_in_projection_bias_an_exactly_zero_gradient()
    {
        const int channels = 4;
        var generator = new Generator(3);
        using var block = new MidBlock(Device.Cpu, channels, channels, timeEmbDim: null, numHeads: 2, numLayers: 1, normChannels: 2);
        var inProjBias = block.NamedParameters().Single(p => p.Name == "attentions.0.in_proj_bias").Tensor;
        (block.Forward(Tensor.Randn([2, channels, 3, 3], generator)) * Tensor.Randn([2, channels, 3, 3], generator)).Sum().Backward();
        var grad = inProjBias.Grad!.ToArray();
        Assert.All(grad[channels..(2 * channels)], g => Assert.Equal(0f, g));
        Assert.Contains(grad[..channels], g => g != 0f);
        Assert.Contains(grad[(2 * channels)..], g => g != 0f);
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
