using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>numLayers × (ResNet layer, then attention if <c>attention</c>), then, if <c>downSample</c>,
/// a 4×4 stride-2 convolution that halves H and W. With a <c>contextDim</c> each layer also cross-attends to the context.</summary>
public sealed class DownBlock : ResNetAttentionBlock
{
    private readonly int _numLayers;
    private readonly Conv2d? _downSampleConv;

    public DownBlock(Device device, int inChannels, int outChannels, int? timeEmbDim, bool downSample,
        int numHeads, int numLayers, bool attention, int normChannels, int? contextDim = null)
        : base(device, inChannels, outChannels, timeEmbDim, numLayers, attention ? numLayers : 0, normChannels, numHeads,
            contextDim is null ? 0 : numLayers, contextDim ?? 0)
    {
        _numLayers = numLayers;
        if (downSample)
            _downSampleConv = AddModule("down_sample_conv",
                new Conv2d(device, outChannels, outChannels, kernelSize: 4, stride: 2, padding: 1));
    }

    public Tensor Forward(Tensor x, Tensor? timeEmbedding = null, Tensor? context = null)
    {
        for (int i = 0; i < _numLayers; i++)
        {
            x = ResNetLayer(i, x, timeEmbedding);
            if (HasAttention) x = AttentionLayer(i, x);
            x = CrossAttentionLayer(i, x, context);
        }
        return _downSampleConv?.Forward(x) ?? x;
    }
}
