using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>What <see cref="Vae.Forward(Tensor, Tensor)"/> returns: the reconstruction and the encoder
/// output, which holds [mean, logvar] along channels (B, 2·z_channels, h, w).</summary>
public sealed record VaeOutput(Tensor Reconstruction, Tensor EncoderOutput);

/// <summary>
/// The reference VAE: the VQ-VAE's encoder and decoder without a codebook; the encoder predicts
/// 2·z_channels (mean, log-variance), the latent is the sample mean + exp(logvar/2)·ε.
/// </summary>
public sealed class Vae : Module
{
    // Built like VqVae on purpose (the reference's two classes share encoder, decoder and 1×1 convs).
    private readonly AutoencoderEncoder _encoder;
    private readonly Conv2d _preQuantConv;
    private readonly Conv2d _postQuantConv;
    private readonly AutoencoderDecoder _decoder;

    public Vae(Device device, int imChannels, AutoencoderParams config) : base(device)
    {
        config.Validate();
        int z = config.ZChannels;
        _encoder = new AutoencoderEncoder(device, imChannels, config, outChannels: 2 * z, AddModule);
        _preQuantConv = AddModule("pre_quant_conv", new Conv2d(device, 2 * z, 2 * z, kernelSize: 1));
        _postQuantConv = AddModule("post_quant_conv", new Conv2d(device, z, z, kernelSize: 1));
        _decoder = new AutoencoderDecoder(device, imChannels, config, AddModule);
    }

    /// <summary>Images → the encoder output [mean, logvar] (B, 2·z_channels, h, w).</summary>
    public Tensor Encode(Tensor x) => _preQuantConv.Forward(_encoder.Forward(x));

    /// <summary>Latents (B, z_channels, h, w) → images.</summary>
    public Tensor Decode(Tensor z) => _decoder.Forward(_postQuantConv.Forward(z));

    /// <summary>Reconstruction through a latent sampled with the given standard-normal <paramref name="eps"/>.</summary>
    public VaeOutput Forward(Tensor x, Tensor eps)
    {
        var encoderOutput = Encode(x);
        return new VaeOutput(Decode(Sample(encoderOutput, eps)), encoderOutput);
    }

    /// <summary>Reconstruction through a latent sampled with ε drawn from <paramref name="generator"/>.</summary>
    public VaeOutput Forward(Tensor x, Generator generator)
    {
        var encoderOutput = Encode(x);
        return new VaeOutput(Decode(Sample(encoderOutput, generator)), encoderOutput);
    }

    /// <summary>mean + exp(0.5·logvar)·eps.</summary>
    public static Tensor Sample(Tensor encoderOutput, Tensor eps)
    {
        var (mean, logVar) = MeanAndLogVar(encoderOutput);
        return mean + (logVar * 0.5f).Exp() * eps;
    }

    public static Tensor Sample(Tensor encoderOutput, Generator generator)
    {
        int[] latentShape = [encoderOutput.Size(0), encoderOutput.Size(1) / 2, encoderOutput.Size(2), encoderOutput.Size(3)];
        return Sample(encoderOutput, Tensor.Randn(latentShape, generator, encoderOutput.Device));
    }

    /// <summary>KL(N(mean, exp(logvar)) ‖ N(0, I)) per image, summed over (C, h, w), averaged over the batch:
    /// mean_b 0.5·Σ (exp(logvar) + mean² − 1 − logvar). A scalar.</summary>
    public static Tensor KlDivergence(Tensor encoderOutput)
    {
        var (mean, logVar) = MeanAndLogVar(encoderOutput);
        return (logVar.Exp() + mean.Square() - 1f - logVar).Sum([1, 2, 3]).Mean() * 0.5f;
    }

    private static (Tensor Mean, Tensor LogVar) MeanAndLogVar(Tensor encoderOutput)
    {
        var halves = encoderOutput.Chunk(2, 1);
        return (halves[0], halves[1]);
    }
}
