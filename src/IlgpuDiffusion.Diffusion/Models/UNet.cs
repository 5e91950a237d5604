using IlgpuDiffusion.Diffusion.Blocks;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>
/// The reference Unet, the noise predictor on latents: conv_in; t_emb = t_proj(sinusoidal(t)); DownBlocks
/// (each remembers its input as a skip); MidBlocks; UpBlockUnets in reverse, each consuming the skip of its
/// DownBlock; GroupNorm → SiLU → conv_out. Every block gets the time embedding.
/// </summary>
public sealed class UNet : Module
{
    private readonly int _timeEmbDim;
    private readonly Sequential _timeProjection;
    private readonly Conv2d _convIn;
    private readonly ModuleList<DownBlock> _downBlocks;
    private readonly ModuleList<MidBlock> _midBlocks;
    private readonly ModuleList<UpBlockUnet> _upBlocks;
    private readonly GroupNorm _normOut;
    private readonly Conv2d _convOut;

    /// <param name="imChannels">channels of what it denoises: the autoencoder's z_channels.</param>
    public UNet(Device device, int imChannels, LdmParams config) : base(device)
    {
        config.Validate();
        var down = config.DownChannels;
        var mid = config.MidChannels;
        int embDim = _timeEmbDim = config.TimeEmbDim;
        _timeProjection = AddModule("t_proj", new Sequential(device,
            new Linear(device, embDim, embDim), new SiLU(device), new Linear(device, embDim, embDim)));
        _convIn = AddModule("conv_in", new Conv2d(device, imChannels, down[0], kernelSize: 3, padding: 1));
        _downBlocks = AddModule("downs", new ModuleList<DownBlock>(device,
            Enumerable.Range(0, down.Length - 1).Select(i => new DownBlock(device, down[i], down[i + 1], embDim,
                config.DownSample[i], config.NumHeads, config.NumDownLayers, config.AttnDown[i], config.NormChannels))));
        _midBlocks = AddModule("mids", new ModuleList<MidBlock>(device,
            Enumerable.Range(0, mid.Length - 1).Select(i => new MidBlock(device, mid[i], mid[i + 1], embDim,
                config.NumHeads, config.NumMidLayers, config.NormChannels))));
        // UpBlock i takes the output of the block above (down_channels[i] channels) and the skip of DownBlock i
        _upBlocks = AddModule("ups", new ModuleList<UpBlockUnet>(device,
            Enumerable.Range(0, down.Length - 1).Reverse().Select(i => new UpBlockUnet(device, 2 * down[i],
                i > 0 ? down[i - 1] : config.ConvOutChannels, embDim, config.DownSample[i],
                config.NumHeads, config.NumUpLayers, config.NormChannels))));
        _normOut = AddModule("norm_out", new GroupNorm(device, config.NormChannels, config.ConvOutChannels));
        _convOut = AddModule("conv_out", new Conv2d(device, config.ConvOutChannels, imChannels, kernelSize: 3, padding: 1));
    }

    /// <summary>The predicted noise for x_t (B, C, h, w) at integer timesteps (one per batch element).</summary>
    public Tensor Forward(Tensor x, IReadOnlyList<int> timesteps)
    {
        if (timesteps.Count != x.Size(0))
            throw new ArgumentException($"unet: {timesteps.Count} timesteps for a batch of {x.Size(0)}", nameof(timesteps));
        var timeEmbedding = _timeProjection.Forward(TimeEmbedding.Sinusoidal(timesteps, _timeEmbDim, Device));
        var h = _convIn.Forward(x);
        var skips = new Stack<Tensor>();
        foreach (var block in _downBlocks.Items)
        {
            skips.Push(h);
            h = TensorScope.Stage(() => block.Forward(h, timeEmbedding));
        }
        foreach (var block in _midBlocks.Items) h = TensorScope.Stage(() => block.Forward(h, timeEmbedding));
        foreach (var block in _upBlocks.Items)
        {
            var skip = skips.Pop();
            h = TensorScope.Stage(() => block.Forward(h, skip, timeEmbedding));
        }
        return _convOut.Forward(_normOut.Forward(h).Silu());
    }

    /// <summary>As above with the timesteps in a tensor (B); float timesteps are truncated, as the reference's <c>.long()</c>.</summary>
    public Tensor Forward(Tensor x, Tensor timesteps) =>
        Forward(x, timesteps.DType == DType.Int32 ? timesteps.ToIntArray() : timesteps.ToArray().Select(t => (int)t).ToArray());
}
