using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>A ResNet layer, then numLayers × (attention layer, cross-attention layer if <c>contextDim</c>, ResNet layer).
/// Always attends.</summary>
public sealed class MidBlock : ResNetAttentionBlock
{
    private readonly int _numLayers;

    public MidBlock(Device device, int inChannels, int outChannels, int? timeEmbDim, int numHeads, int numLayers, int normChannels,
        int? contextDim = null)
        : base(device, inChannels, outChannels, timeEmbDim, numLayers + 1, numLayers, normChannels, numHeads,
            contextDim is null ? 0 : numLayers, contextDim ?? 0)
    {
        _numLayers = numLayers;
    }

    public Tensor Forward(Tensor x, Tensor? timeEmbedding = null, Tensor? context = null)
    {
        x = ResNetLayer(0, x, timeEmbedding);
        for (int i = 0; i < _numLayers; i++)
            x = ResNetLayer(i + 1, CrossAttentionLayer(i, AttentionLayer(i, x), context), timeEmbedding);
        return x;
    }
}
