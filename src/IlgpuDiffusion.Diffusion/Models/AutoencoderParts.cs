using IlgpuDiffusion.Diffusion.Blocks;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>Registers a child on the owning model (its <c>AddModule</c>): the encoder and decoder are halves
/// of VqVae and Vae, whose state dicts name their layers at the top level (<c>encoder_conv_in</c>, …).</summary>
internal delegate Module RegisterModule(string name, Module module);

/// <summary>conv_in → DownBlocks (down_channels[i] → [i+1]) → MidBlocks (mid_channels pairs) → GroupNorm →
/// SiLU → conv to <c>outChannels</c> (z_channels for the VQ-VAE, 2·z_channels for the VAE).</summary>
internal sealed class AutoencoderEncoder
{
    private readonly Conv2d _convIn;
    private readonly ModuleList<DownBlock> _downBlocks;
    private readonly ModuleList<MidBlock> _midBlocks;
    private readonly GroupNorm _normOut;
    private readonly Conv2d _convOut;

    public AutoencoderEncoder(Device device, int imChannels, AutoencoderParams p, int outChannels, RegisterModule register)
    {
        var down = p.DownChannels;
        var mid = p.MidChannels;
        _convIn = (Conv2d)register("encoder_conv_in", new Conv2d(device, imChannels, down[0], kernelSize: 3, padding: 1));
        _downBlocks = (ModuleList<DownBlock>)register("encoder_layers", new ModuleList<DownBlock>(device,
            Enumerable.Range(0, down.Length - 1).Select(i => new DownBlock(device, down[i], down[i + 1], timeEmbDim: null,
                p.DownSample[i], p.NumHeads, p.NumDownLayers, p.AttnDown[i], p.NormChannels))));
        _midBlocks = (ModuleList<MidBlock>)register("encoder_mids", new ModuleList<MidBlock>(device,
            Enumerable.Range(0, mid.Length - 1).Select(i => new MidBlock(device, mid[i], mid[i + 1], timeEmbDim: null,
                p.NumHeads, p.NumMidLayers, p.NormChannels))));
        _normOut = (GroupNorm)register("encoder_norm_out", new GroupNorm(device, p.NormChannels, down[^1]));
        _convOut = (Conv2d)register("encoder_conv_out", new Conv2d(device, down[^1], outChannels, kernelSize: 3, padding: 1));
    }

    public Tensor Forward(Tensor x)
    {
        var h = _convIn.Forward(x);
        foreach (var block in _downBlocks.Items) h = TensorScope.Stage(() => block.Forward(h));
        foreach (var block in _midBlocks.Items) h = TensorScope.Stage(() => block.Forward(h));
        return _convOut.Forward(_normOut.Forward(h).Silu());
    }
}

// The decoder mirrors the encoder's construction on purpose (the reference's layers, in reverse).
/// <summary>conv from z_channels to mid_channels[-1] → the MidBlocks mirrored → the UpBlocks mirrored
/// (down_channels[i] → [i−1], up-sampling and attending where DownBlock i−1 did) → GroupNorm → SiLU →
/// conv to image channels. No output activation.</summary>
internal sealed class AutoencoderDecoder
{
    private readonly Conv2d _convIn;
    private readonly ModuleList<MidBlock> _midBlocks;
    private readonly ModuleList<UpBlock> _upBlocks;
    private readonly GroupNorm _normOut;
    private readonly Conv2d _convOut;

    public AutoencoderDecoder(Device device, int imChannels, AutoencoderParams p, RegisterModule register)
    {
        var down = p.DownChannels;
        var mid = p.MidChannels;
        _convIn = (Conv2d)register("decoder_conv_in", new Conv2d(device, p.ZChannels, mid[^1], kernelSize: 3, padding: 1));
        _midBlocks = (ModuleList<MidBlock>)register("decoder_mids", new ModuleList<MidBlock>(device,
            Enumerable.Range(1, mid.Length - 1).Reverse().Select(i => new MidBlock(device, mid[i], mid[i - 1], timeEmbDim: null,
                p.NumHeads, p.NumMidLayers, p.NormChannels))));
        _upBlocks = (ModuleList<UpBlock>)register("decoder_layers", new ModuleList<UpBlock>(device,
            Enumerable.Range(1, down.Length - 1).Reverse().Select(i => new UpBlock(device, down[i], down[i - 1],
                p.DownSample[i - 1], p.NumHeads, p.NumUpLayers, p.AttnDown[i - 1], p.NormChannels))));
        _normOut = (GroupNorm)register("decoder_norm_out", new GroupNorm(device, p.NormChannels, down[0]));
        _convOut = (Conv2d)register("decoder_conv_out", new Conv2d(device, down[0], imChannels, kernelSize: 3, padding: 1));
    }

    public Tensor Forward(Tensor z)
    {
        var h = _convIn.Forward(z);
        foreach (var block in _midBlocks.Items) h = TensorScope.Stage(() => block.Forward(h));
        foreach (var block in _upBlocks.Items) h = TensorScope.Stage(() => block.Forward(h));
        return _convOut.Forward(_normOut.Forward(h).Silu());
    }
}
