using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>The autoencoder decoder's block: if <c>upSample</c>, a 4×4 stride-2 transposed convolution that
/// doubles H and W (on the in channels), then numLayers × (ResNet layer, attention if <c>attention</c>).</summary>
public sealed class UpBlock : ResNetAttentionBlock
{
    private readonly int _numLayers;
    private readonly ConvTranspose2d? _upSampleConv;

    public UpBlock(Device device, int inChannels, int outChannels, bool upSample,
        int numHeads, int numLayers, bool attention, int normChannels)
        : base(device, inChannels, outChannels, timeEmbDim: null, numLayers, attention ? numLayers : 0, normChannels, numHeads)
    {
        _numLayers = numLayers;
        if (upSample)
            _upSampleConv = AddModule("up_sample_conv",
                new ConvTranspose2d(device, inChannels, inChannels, kernelSize: 4, stride: 2, padding: 1));
    }

    public Tensor Forward(Tensor x)
    {
        x = _upSampleConv?.Forward(x) ?? x;
        for (int i = 0; i < _numLayers; i++)
        {
            x = ResNetLayer(i, x, timeEmbedding: null);
            if (HasAttention) x = AttentionLayer(i, x);
        }
        return x;
    }
}
