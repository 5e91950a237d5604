using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>
/// What every block of the reference is made of: ResNet layers and self-attention layers. The reference
/// keeps the parts of layer i in parallel lists (resnet_conv_first[i], t_emb_layers[i], resnet_conv_second[i],
/// attention_norms[i], attentions[i], residual_input_conv[i]), registered in this order, so the state-dict
/// names come out as <c>downs.0.resnet_conv_first.1.2.weight</c>. ResNet layer 0 maps in → out channels,
/// the others out → out; attention layers work on out channels. The conditional UNet's blocks add, after the
/// attentions, cross-attention layers on a text context (cross_attention_norms[i], cross_attentions[i], context_proj[i]).
/// </summary>
public abstract class ResNetAttentionBlock : Module
{
    private readonly ModuleList<Sequential> _convFirst;
    private readonly ModuleList<Sequential>? _timeEmbeddingProjections;
    private readonly ModuleList<Sequential> _convSecond;
    private readonly ModuleList<GroupNorm>? _attentionNorms;
    private readonly ModuleList<MultiheadAttention>? _attentions;
    private readonly ModuleList<GroupNorm>? _crossAttentionNorms;
    private readonly ModuleList<MultiheadAttention>? _crossAttentions;
    private readonly ModuleList<Linear>? _contextProjections;
    private readonly ModuleList<Conv2d> _residualInputConv;

    /// <param name="timeEmbDim">size of the time embedding added inside each ResNet layer; null for none (autoencoder).</param>
    /// <param name="crossAttentionLayers">how many cross-attention layers, on a context of <paramref name="contextDim"/> features.</param>
    protected ResNetAttentionBlock(Device device, int inChannels, int outChannels, int? timeEmbDim,
        int resNetLayers, int attentionLayers, int normChannels, int numHeads, int crossAttentionLayers = 0, int contextDim = 0)
        : base(device)
    {
        int InChannels(int layer) => layer == 0 ? inChannels : outChannels;
        var layers = Enumerable.Range(0, resNetLayers).ToList();
        _convFirst = AddModule("resnet_conv_first", new ModuleList<Sequential>(device,
            layers.Select(i => NormSiluConv(device, normChannels, InChannels(i), outChannels))));
        if (timeEmbDim is int embDim)
            _timeEmbeddingProjections = AddModule("t_emb_layers", new ModuleList<Sequential>(device,
                layers.Select(_ => new Sequential(device, new SiLU(device), new Linear(device, embDim, outChannels)))));
        _convSecond = AddModule("resnet_conv_second", new ModuleList<Sequential>(device,
            layers.Select(_ => NormSiluConv(device, normChannels, outChannels, outChannels))));
        if (attentionLayers > 0)
        {
            var attentionRange = Enumerable.Range(0, attentionLayers).ToList();
            _attentionNorms = AddModule("attention_norms", new ModuleList<GroupNorm>(device,
                attentionRange.Select(_ => new GroupNorm(device, normChannels, outChannels))));
            _attentions = AddModule("attentions", new ModuleList<MultiheadAttention>(device,
                attentionRange.Select(_ => new MultiheadAttention(device, outChannels, numHeads))));
        }
        if (crossAttentionLayers > 0)
        {
            var crossRange = Enumerable.Range(0, crossAttentionLayers).ToList();
            _crossAttentionNorms = AddModule("cross_attention_norms", new ModuleList<GroupNorm>(device,
                crossRange.Select(_ => new GroupNorm(device, normChannels, outChannels))));
            _crossAttentions = AddModule("cross_attentions", new ModuleList<MultiheadAttention>(device,
                crossRange.Select(_ => new MultiheadAttention(device, outChannels, numHeads))));
            _contextProjections = AddModule("context_proj", new ModuleList<Linear>(device,
                crossRange.Select(_ => new Linear(device, contextDim, outChannels))));
        }
        _residualInputConv = AddModule("residual_input_conv", new ModuleList<Conv2d>(device,
            layers.Select(i => new Conv2d(device, InChannels(i), outChannels, kernelSize: 1))));
    }

    protected bool HasAttention => _attentions != null;

    /// <summary>GroupNorm → SiLU → 3×3 conv, as one Sequential (state-dict children 0 and 2).</summary>
    private static Sequential NormSiluConv(Device device, int normChannels, int inChannels, int outChannels) =>
        new(device, new GroupNorm(device, normChannels, inChannels), new SiLU(device),
            new Conv2d(device, inChannels, outChannels, kernelSize: 3, padding: 1));

    /// <summary>ResNet layer <paramref name="i"/>: conv_second(conv_first(x) + Linear(SiLU(t_emb))) + conv1×1(x);
    /// the time term only where the block has a time embedding.</summary>
    protected Tensor ResNetLayer(int i, Tensor x, Tensor? timeEmbedding) => TensorScope.Stage(() =>
    {
        var h = TensorScope.Stage(() => _convFirst[i].Forward(x));
        if (_timeEmbeddingProjections != null)
        {
            var t = timeEmbedding ?? throw new ArgumentNullException(
                nameof(timeEmbedding), $"{GetType().Name} was built with a time embedding and needs one");
            h = h + _timeEmbeddingProjections[i].Forward(t).Unsqueeze(-1).Unsqueeze(-1);
        }
        return TensorScope.Stage(() => _convSecond[i].Forward(h)) + _residualInputConv[i].Forward(x);
    });

    /// <summary>Attention layer <paramref name="i"/>: the H·W positions attend to each other (GroupNorm over
    /// (B, C, H·W), multi-head self-attention over (B, H·W, C) without the key bias); the result is added to x.</summary>
    protected Tensor AttentionLayer(int i, Tensor x) => Attend(_attentionNorms![i], _attentions![i], x, keyValue: null);

    /// <summary>Cross-attention layer <paramref name="i"/> where the block has them (else x): the H·W positions
    /// (GroupNorm'd as in <see cref="AttentionLayer"/>) attend to the tokens of <paramref name="context"/>
    /// (B, tokens, context_dim), projected to the block's channels by context_proj[i]; the result is added to x.</summary>
    protected Tensor CrossAttentionLayer(int i, Tensor x, Tensor? context)
    {
        if (_crossAttentions == null) return x;
        var tokens = context ?? throw new ArgumentNullException(
            nameof(context), $"{GetType().Name} was built with cross-attention and needs a context");
        return Attend(_crossAttentionNorms![i], _crossAttentions[i], x, _contextProjections![i].Forward(tokens));
    }

    /// <summary>x + attention of its normalised positions over <paramref name="keyValue"/> (null: over themselves).</summary>
    private static Tensor Attend(GroupNorm norm, MultiheadAttention attention, Tensor x, Tensor? keyValue) => TensorScope.Stage(() =>
    {
        int batch = x.Size(0), channels = x.Size(1), height = x.Size(2), width = x.Size(3);
        var tokens = norm.Forward(x.Reshape(batch, channels, height * width)).Transpose(1, 2);
        var attended = Tensor.MultiheadAttention(tokens, keyValue ?? tokens, attention.NumHeads, attention.InProjWeight,
            WithoutKeyBias(attention.InProjBias), attention.OutProj.Weight, attention.OutProj.Bias!);
        return x + attended.Transpose(1, 2).Reshape(batch, channels, height, width);
    });

    /// <summary>The packed in-projection bias (3E) with its key part replaced by zeros. The key bias adds q·b_k to
    /// every score of a query's row, which softmax ignores: its true gradient is zero. Leaving it out keeps that
    /// gradient exactly zero, as in the float64 reference, instead of float32 round-off that Adam would blow up
    /// to full-size steps.</summary>
    private static Tensor WithoutKeyBias(Tensor inProjBias)
    {
        int e = inProjBias.Size(0) / 3;
        return Tensor.Concat([inProjBias.Slice(0, 0, e), Tensor.Zeros([e], inProjBias.Device), inProjBias.Slice(0, 2 * e, e)], 0);
    }
}
