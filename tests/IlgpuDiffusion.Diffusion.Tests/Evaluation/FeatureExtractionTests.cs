using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests.Evaluation;

public class FeatureExtractionTests
{
    [Fact]
    public void Resize_matches_pytorch_bilinear_interpolation_without_aligned_corners()
    {
        using var scope = new TensorScope();
        var image = Tensor.FromArray([0f, 1f, 2f, 3f], [1, 1, 2, 2]);
        // torch.nn.functional.interpolate(x, size=4, mode="bilinear", align_corners=False)
        float[] expected = [0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3];
        var resized = FeatureExtraction.Resize(image, 4);
        Assert.Equal([1, 1, 4, 4], resized.Shape);
        Assert.Equal(expected, resized.ToArray());
    }

    [Fact]
    public void Resnet18_features_are_512_pooled_values_and_a_grey_image_equals_its_three_channel_copy()
    {
        using var features = new ResNet18Features(Device.Cpu, imageSize: 64);
        using var scope = new TensorScope();
        var grey = Tensor.Rand([2, 1, 16, 16], new Generator(5)).Affine(2f, -1f);
        var fromGrey = features.Extract(grey);
        Assert.Equal([2, 512], fromGrey.Shape);
        var fromRgb = features.Extract(Tensor.Concat([grey, grey, grey], 1)).ToArray();
        Assert.Equal(fromRgb, fromGrey.ToArray());
        Assert.All(fromRgb, v => Assert.True(v >= 0, "pooled ReLU outputs are not negative"));
        Assert.NotEqual(fromRgb[..512], fromRgb[512..]);
    }
}
