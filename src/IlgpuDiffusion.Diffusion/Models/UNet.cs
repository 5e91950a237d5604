using IlgpuDiffusion.Diffusion.Blocks;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>
/// The conditions of the conditional UNet, one row per batch element: <see cref="Class"/> (B, num_classes)
/// one-hot rows (an all-zero row is no class), <see cref="Text"/> (B, tokens, text_embed_dim) contexts,
/// <see cref="Image"/> (B, image_condition_input_channels, H, W) masks (all-zero = no mask).
/// </summary>
public sealed record UNetConditions(Tensor? Class = null, Tensor? Text = null, Tensor? Image = null)
{
    /// <summary>(B, numClasses) one-hot rows of <paramref name="labels"/>; a row whose <paramref name="keep"/> is
    /// false is all zeros (the class dropped).</summary>
    public static Tensor OneHot(IReadOnlyList<int> labels, int numClasses, Device device, IReadOnlyList<bool>? keep = null)
    {
        var values = new float[labels.Count * numClasses];
        for (int b = 0; b < labels.Count; b++)
        {
            if ((uint)labels[b] >= (uint)numClasses)
                throw new ArgumentOutOfRangeException(nameof(labels), $"class label {labels[b]} is not in [0, {numClasses})");
            if (keep?[b] ?? true) values[b * numClasses + labels[b]] = 1;
        }
        return Tensor.FromArray(values, [labels.Count, numClasses], device);
    }
}

/// <summary>
/// The reference Unet, the noise predictor on latents: conv_in; t_emb = t_proj(sinusoidal(t)); DownBlocks
/// (each remembers its input as a skip); MidBlocks; UpBlockUnets in reverse, each consuming the skip of its
/// DownBlock; GroupNorm → SiLU → conv_out. Every block gets the time embedding.
/// With <c>ldm_params.condition_config</c> it is the reference's conditional Unet (unet_cond_base.py): a class
/// embedding added to the time embedding, cross-attention in every block on a text context, and a mask mapped by
/// a 1×1 convolution and concatenated to the input (conv_in then reads both, as conv_in_concat).
/// </summary>
public sealed class UNet : Module
{
    private readonly int _timeEmbDim;
    private readonly ConditionConfig? _conditions;
    private readonly Embedding? _classEmbedding;
    private readonly Conv2d? _maskConv;
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
        _conditions = config.ConditionConfig;
        Sequential TimeProjection() => AddModule("t_proj", new Sequential(device,
            new Linear(device, embDim, embDim), new SiLU(device), new Linear(device, embDim, embDim)));
        // the two reference classes register their modules in different orders, and the order is the state dict's
        if (_conditions == null) _timeProjection = TimeProjection();
        if (_conditions?.ClassCondition is { } classes)
            _classEmbedding = AddModule("class_emb", new Embedding(device, classes.NumClasses, embDim));
        if (_conditions?.ImageCondition is { } mask)
        {
            _maskConv = AddModule("cond_conv_in", new Conv2d(device, mask.ImageConditionInputChannels,
                mask.ImageConditionOutputChannels, kernelSize: 1, bias: false));
            _convIn = AddModule("conv_in_concat", new Conv2d(device, imChannels + mask.ImageConditionOutputChannels, down[0],
                kernelSize: 3, padding: 1));
        }
        else
            _convIn = AddModule("conv_in", new Conv2d(device, imChannels, down[0], kernelSize: 3, padding: 1));
        _timeProjection ??= TimeProjection();
        int? contextDim = _conditions?.TextCondition?.TextEmbedDim;
        _downBlocks = AddModule("downs", new ModuleList<DownBlock>(device,
            Enumerable.Range(0, down.Length - 1).Select(i => new DownBlock(device, down[i], down[i + 1], embDim,
                config.DownSample[i], config.NumHeads, config.NumDownLayers, config.AttnDown[i], config.NormChannels, contextDim))));
        _midBlocks = AddModule("mids", new ModuleList<MidBlock>(device,
            Enumerable.Range(0, mid.Length - 1).Select(i => new MidBlock(device, mid[i], mid[i + 1], embDim,
                config.NumHeads, config.NumMidLayers, config.NormChannels, contextDim))));
        // UpBlock i takes the output of the block above (down_channels[i] channels) and the skip of DownBlock i
        _upBlocks = AddModule("ups", new ModuleList<UpBlockUnet>(device,
            Enumerable.Range(0, down.Length - 1).Reverse().Select(i => new UpBlockUnet(device, 2 * down[i],
                i > 0 ? down[i - 1] : config.ConvOutChannels, embDim, config.DownSample[i],
                config.NumHeads, config.NumUpLayers, config.NormChannels, contextDim))));
        _normOut = AddModule("norm_out", new GroupNorm(device, config.NormChannels, config.ConvOutChannels));
        _convOut = AddModule("conv_out", new Conv2d(device, config.ConvOutChannels, imChannels, kernelSize: 3, padding: 1));
    }

    /// <summary>The condition settings (null: unconditional).</summary>
    public ConditionConfig? Conditions => _conditions;

    /// <summary>The predicted noise for x_t (B, C, h, w) at integer timesteps (one per batch element); a conditional
    /// UNet needs every condition its config lists (a dropped one given as zeros, or the empty prompt's context).</summary>
    public Tensor Forward(Tensor x, IReadOnlyList<int> timesteps, UNetConditions? conditions = null)
    {
        if (timesteps.Count != x.Size(0))
            throw new ArgumentException($"unet: {timesteps.Count} timesteps for a batch of {x.Size(0)}", nameof(timesteps));
        Tensor Required(Tensor? condition, string type) => condition ?? throw new ArgumentException(
            $"unet: ldm_params.condition_config lists '{type}' but no {type} condition was given", nameof(conditions));

        Tensor h;
        if (_maskConv != null)
        {
            var mask = NearestResize(Required(conditions?.Image, ConditionConfig.Image), x.Size(2), x.Size(3));
            h = _convIn.Forward(Tensor.Concat([x, _maskConv.Forward(mask)], 1));
        }
        else
            h = _convIn.Forward(x);
        var timeEmbedding = _timeProjection.Forward(TimeEmbedding.Sinusoidal(timesteps, _timeEmbDim, Device));
        if (_classEmbedding != null)
            timeEmbedding = timeEmbedding + Required(conditions?.Class, ConditionConfig.Class).Matmul(_classEmbedding.Weight);
        var context = _conditions?.TextCondition != null ? Required(conditions?.Text, ConditionConfig.Text) : null;

        var skips = new Stack<Tensor>();
        foreach (var block in _downBlocks.Items)
        {
            skips.Push(h);
            h = TensorScope.Stage(() => block.Forward(h, timeEmbedding, context));
        }
        foreach (var block in _midBlocks.Items) h = TensorScope.Stage(() => block.Forward(h, timeEmbedding, context));
        foreach (var block in _upBlocks.Items)
        {
            var skip = skips.Pop();
            h = TensorScope.Stage(() => block.Forward(h, skip, timeEmbedding, context));
        }
        return _convOut.Forward(_normOut.Forward(h).Silu());
    }

    /// <summary>As above with the timesteps in a tensor (B); float timesteps are truncated, as the reference's <c>.long()</c>.</summary>
    public Tensor Forward(Tensor x, Tensor timesteps, UNetConditions? conditions = null) =>
        Forward(x, timesteps.DType == DType.Int32 ? timesteps.ToIntArray() : timesteps.ToArray().Select(t => (int)t).ToArray(),
            conditions);

    /// <summary>torch.nn.functional.interpolate(mode="nearest") of (B, C, H, W) to (B, C, h, w): output index i reads
    /// min(floor(i·H/h), H − 1) (the scale in float32, as torch). Done as products with 0/1 selection matrices, which
    /// copy values exactly and carry the gradient back to the mask.</summary>
    internal static Tensor NearestResize(Tensor x, int height, int width)
    {
        if (x.Size(2) == height && x.Size(3) == width) return x;
        Tensor Selection(int from, int to)
        {
            var values = new float[from * to];
            float scale = (float)from / to;
            for (int i = 0; i < to; i++) values[Math.Min((int)MathF.Floor(i * scale), from - 1) * to + i] = 1;
            return Tensor.FromArray(values, [from, to], x.Device);
        }
        var columns = x.Matmul(Selection(x.Size(3), width)); // (B, C, H, w)
        return columns.Transpose(2, 3).Matmul(Selection(x.Size(2), height)).Transpose(2, 3);
    }
}
