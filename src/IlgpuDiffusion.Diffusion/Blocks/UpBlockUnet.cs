using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>The UNet's block: the input (in/2 channels) is upsampled if <c>upSample</c> (4×4 stride-2
/// transposed convolution), concatenated with the skip tensor of the matching DownBlock (in/2 channels),
/// then numLayers × (ResNet layer, attention layer, cross-attention layer if <c>contextDim</c>), all with the time embedding.</summary>
public sealed class UpBlockUnet : ResNetAttentionBlock
{
    private readonly int _numLayers;
    private readonly ConvTranspose2d? _upSampleConv;

    public UpBlockUnet(Device device, int inChannels, int outChannels, int timeEmbDim, bool upSample,
        int numHeads, int numLayers, int normChannels, int? contextDim = null)
        : base(device, inChannels, outChannels, timeEmbDim, numLayers, numLayers, normChannels, numHeads,
            contextDim is null ? 0 : numLayers, contextDim ?? 0)
    {
        _numLayers = numLayers;
        if (upSample)
            _upSampleConv = AddModule("up_sample_conv",
                new ConvTranspose2d(device, inChannels / 2, inChannels / 2, kernelSize: 4, stride: 2, padding: 1));
    }

    public Tensor Forward(Tensor x, Tensor skip, Tensor timeEmbedding, Tensor? context = null)
    {
        x = Tensor.Concat([_upSampleConv?.Forward(x) ?? x, skip], 1);
        for (int i = 0; i < _numLayers; i++)
            x = CrossAttentionLayer(i, AttentionLayer(i, ResNetLayer(i, x, timeEmbedding)), context);
        return x;
    }
}
