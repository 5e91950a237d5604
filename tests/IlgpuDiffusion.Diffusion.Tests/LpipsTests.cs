using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>The ResNet18 variant loads from the NuGet package's ONNX file (copied next to the test
/// binaries by the Diffusion project) and behaves like a distance; loaded once for the class.</summary>
public sealed class ResNet18LpipsFixture : IDisposable
{
    public ResNet18Lpips Model { get; } = new(Device.Cpu);
    public void Dispose() => Model.Dispose();
}

public class LpipsTests(ResNet18LpipsFixture fixture) : IClassFixture<ResNet18LpipsFixture>
{
    private static Tensor Images(int seed, int channels, int size, int batch = 2) =>
        Tensor.Rand([batch, channels, size, size], new Generator((ulong)seed)).Affine(2f, -1f);

    [Fact]
    public void Resnet18_has_no_trainable_parameters()
    {
        Assert.Empty(fixture.Model.Parameters());
        Assert.True(File.Exists(ResNet18Lpips.DefaultOnnxPath));
    }

    [Fact]
    public void Identical_images_are_at_distance_zero()
    {
        using var scope = new TensorScope();
        var x = Images(1, 3, 32);
        var d = fixture.Model.Forward(x, x.Clone());
        Assert.Equal([2, 1, 1, 1], d.Shape);
        Assert.All(d.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Distance_grows_with_the_noise_level()
    {
        using var scope = new TensorScope();
        var x = Images(2, 3, 64);
        var noise = Tensor.Randn([2, 3, 64, 64], new Generator(3));
        var distances = new[] { 0.05f, 0.2f, 0.5f, 1f }
            .Select(level => fixture.Model.Forward(x, (x + noise * level).Clamp(-1f, 1f)).ToArray()).ToList();
        for (int i = 1; i < distances.Count; i++)
            for (int b = 0; b < 2; b++)
                Assert.True(distances[i][b] > distances[i - 1][b],
                    $"image {b}: distance {distances[i][b]} at level {i} is not above {distances[i - 1][b]}");
    }

    [Fact]
    public void Gradient_reaches_the_input_finite_and_non_zero()
    {
        using var scope = new TensorScope();
        var x = Images(4, 3, 32);
        x.RequiresGrad = true;
        fixture.Model.Forward(x, Images(5, 3, 32)).Sum().Backward();
        var g = x.Grad!.ToArray();
        Assert.All(g, v => Assert.True(float.IsFinite(v)));
        Assert.Contains(g, v => v != 0f);
    }

    [Fact]
    public void One_channel_images_of_mnist_size_equal_their_three_channel_copies()
    {
        using var scope = new TensorScope();
        var a = Images(6, 1, 28);
        var b = Images(7, 1, 28);
        var grey = fixture.Model.Forward(a, b).ToArray();
        var rgb = fixture.Model.Forward(a.Expand([2, 3, 28, 28]), b.Expand([2, 3, 28, 28])).ToArray();
        Assert.All(grey, v => Assert.True(float.IsFinite(v) && v > 0));
        Assert.Equal(rgb, grey);
    }

    [Fact]
    public void Missing_vgg_weights_give_an_error_naming_the_file_and_the_folder()
    {
        var folder = Directory.CreateTempSubdirectory("ilgpudiffusion-lpips-").FullName;
        try
        {
            Assert.False(VggLpips.HasWeights(folder));
            var e = Assert.Throws<FileNotFoundException>(() => VggLpips.Load(Device.Cpu, folder));
            Assert.Contains(VggLpips.TorchvisionFile, e.Message);
            Assert.Contains(VggLpips.LinFile, e.Message);
            Assert.Contains(folder, e.Message);
            Assert.Contains("--lpips-weights", e.Message);
            Assert.Contains(Lpips.DefaultWeightsFolder, e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>A weights folder the user names must hold the weights: no silent fall-back to the ResNet18 loss.</summary>
    [Fact]
    public void A_named_weights_folder_without_weights_is_an_error()
    {
        var folder = Directory.CreateTempSubdirectory("ilgpudiffusion-lpips-").FullName;
        try
        {
            var empty = Assert.Throws<FileNotFoundException>(() => Lpips.Create(Device.Cpu, folder));
            Assert.StartsWith($"--lpips-weights {folder}: the folder holds no LPIPS (VGG16) weights", empty.Message);
            var missing = Assert.Throws<FileNotFoundException>(() => Lpips.Create(Device.Cpu, Path.Combine(folder, "nope")));
            Assert.Contains("nope: no such folder", missing.Message);
            Assert.Contains(VggLpips.TorchvisionFile, missing.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Vgg_weights_round_trip_through_safetensors_in_our_naming()
    {
        var folder = Directory.CreateTempSubdirectory("ilgpudiffusion-lpips-").FullName;
        try
        {
            using var original = new VggLpips(Device.Cpu, new Generator(8));
            Tensors.IO.SafeTensors.Write(Path.Combine(folder, VggLpips.SafeTensorsFile), original.StateDictToHost());
            using var loaded = Lpips.Create(Device.Cpu, folder);
            Assert.IsType<VggLpips>(loaded);
            using var scope = new TensorScope();
            var a = Images(9, 3, 16);
            var b = Images(10, 3, 16);
            Assert.Equal(original.Forward(a, b).ToArray(), loaded.Forward(a, b).ToArray());
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
