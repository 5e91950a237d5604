using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>What <see cref="VqVae.Forward"/> returns: the reconstruction, the quantised latent
/// (straight-through), the two quantisation losses (scalars) and the chosen codebook rows (B, h, w).</summary>
public sealed record VqVaeOutput(Tensor Reconstruction, Tensor Quantized, Tensor CodebookLoss, Tensor CommitmentLoss, Tensor Indices);

/// <summary>
/// The reference VQVAE: encoder → 1×1 pre-quant conv → nearest codebook row per latent position
/// (codebook loss mean((q − sg(e))²), commitment loss mean((sg(q) − e)²), straight-through output) →
/// 1×1 post-quant conv → decoder. State-dict names are the reference's (encoder_*, pre_quant_conv,
/// embedding, post_quant_conv, decoder_*).
/// </summary>
public sealed class VqVae : Module
{
    private readonly AutoencoderEncoder _encoder;
    private readonly Conv2d _preQuantConv;
    private readonly Conv2d _postQuantConv;
    private readonly AutoencoderDecoder _decoder;

    public VqVae(Device device, int imChannels, AutoencoderParams config) : base(device)
    {
        config.Validate();
        int z = config.ZChannels;
        _encoder = new AutoencoderEncoder(device, imChannels, config, outChannels: z, AddModule);
        _preQuantConv = AddModule("pre_quant_conv", new Conv2d(device, z, z, kernelSize: 1));
        Codebook = AddModule("embedding", new Embedding(device, config.CodebookSize, z));
        _postQuantConv = AddModule("post_quant_conv", new Conv2d(device, z, z, kernelSize: 1));
        _decoder = new AutoencoderDecoder(device, imChannels, config, AddModule);
    }

    /// <summary>The codebook, (codebook_size, z_channels).</summary>
    public Embedding Codebook { get; }

    /// <summary>Images (B, C, H, W) → quantised latents with their losses and codebook indices.</summary>
    public QuantizeResult Encode(Tensor x) => VectorQuantization.Quantize(_preQuantConv.Forward(_encoder.Forward(x)), Codebook.Weight);

    /// <summary>Latents (B, z_channels, h, w) → images.</summary>
    public Tensor Decode(Tensor z) => _decoder.Forward(_postQuantConv.Forward(z));

    public VqVaeOutput Forward(Tensor x)
    {
        var latent = Encode(x);
        return new VqVaeOutput(Decode(latent.Quantized), latent.Quantized, latent.CodebookLoss, latent.CommitmentLoss, latent.Indices);
    }
}
