using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>
/// The 512-d pooled features of the ImageNet ResNet18 the project ships (the network of <see cref="ResNet18Lpips"/>):
/// images are resized bilinearly to <see cref="ImageSize"/>² (224, the network's input), a grey image is repeated to
/// three channels, and values map from [−1, 1] to the network's convention (0–255, BGR, minus the channel means).
/// Distances on these features are FD-ResNet18 and KID-ResNet18 — not FID, which uses Inception-v3.
/// </summary>
public sealed class ResNet18Features : IFeatureExtractor
{
    public const int DefaultImageSize = 224;

    private readonly ResNet18Lpips _network;

    /// <param name="imageSize">A multiple of 32 (the network's strides need it); smaller than 224 is cheaper but
    /// gives numbers comparable only with others at the same size.</param>
    public ResNet18Features(Device device, int imageSize = DefaultImageSize)
    {
        if (imageSize < 32 || imageSize % 32 != 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "the ResNet18 input size must be a multiple of 32");
        ImageSize = imageSize;
        _network = new ResNet18Lpips(device);
    }

    public int ImageSize { get; }

    public string Name => "ResNet18";

    public Tensor Extract(Tensor images) => _network.PooledFeatures(FeatureExtraction.Resize(images, ImageSize));

    public void Dispose() => _network.Dispose();
}
