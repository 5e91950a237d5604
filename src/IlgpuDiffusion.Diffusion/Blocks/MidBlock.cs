using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>A ResNet layer, then numLayers × (attention layer, ResNet layer). Always attends.</summary>
public sealed class MidBlock : ResNetAttentionBlock
{
    private readonly int _numLayers;

    public MidBlock(Device device, int inChannels, int outChannels, int? timeEmbDim, int numHeads, int numLayers, int normChannels)
        : base(device, inChannels, outChannels, timeEmbDim, numLayers + 1, numLayers, normChannels, numHeads)
    {
        _numLayers = numLayers;
    }

    public Tensor Forward(Tensor x, Tensor? timeEmbedding = null)
    {
        x = ResNetLayer(0, x, timeEmbedding);
        for (int i = 0; i < _numLayers; i++)
            x = ResNetLayer(i + 1, AttentionLayer(i, x), timeEmbedding);
        return x;
    }
}
