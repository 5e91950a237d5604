using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>The models' state dicts have exactly the reference's names, shapes, kinds (param/buffer) and order
/// (tests/fixtures/parity/state_dicts), so reference checkpoints load by name.</summary>
public class StateDictTests
{
    public static TheoryData<string> Listings() =>
        new() { "vqvae_mnist", "vqvae_celebhq", "vae_mnist", "vae_celebhq", "unet_mnist", "unet_celebhq", "unet_mnist_class_cond" };

    [Theory]
    [MemberData(nameof(Listings))]
    public void State_dict_matches_the_reference_listing(string listing)
    {
        bool mnist = listing.Contains("mnist", StringComparison.Ordinal);
        var autoencoder = mnist ? ReferenceConfigs.MnistAutoencoder : ReferenceConfigs.CelebHqAutoencoder;
        int imChannels = mnist ? 1 : 3;
        using Module model = listing.Split('_')[0] switch
        {
            "vqvae" => new VqVae(Device.Cpu, imChannels, autoencoder),
            "vae" => new Vae(Device.Cpu, imChannels, autoencoder),
            _ when listing.EndsWith("class_cond", StringComparison.Ordinal) =>
                new UNet(Device.Cpu, autoencoder.ZChannels, ReferenceConfigs.MnistClassCondLdm),
            _ => new UNet(Device.Cpu, autoencoder.ZChannels, mnist ? ReferenceConfigs.MnistLdm : ReferenceConfigs.CelebHqLdm),
        };
        AssertMatches(listing, model);
    }

    [Theory]
    [InlineData("discriminator_mnist", 1)]
    [InlineData("discriminator_celebhq", 3)]
    public void Discriminator_matches_the_listing(string listing, int imChannels)
    {
        using var model = new Discriminator(Device.Cpu, imChannels);
        AssertMatches(listing, model);
    }

    [Fact]
    public void Lpips_vgg16_matches_the_listing()
    {
        using var model = new VggLpips(Device.Cpu);
        AssertMatches("lpips_vgg16", model);
    }

    private static void AssertMatches(string listing, Module model)
    {
        var expected = File.ReadAllLines(Fixtures.Path($"parity/state_dicts/{listing}.txt"))
            .Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(f => $"{f[0]} {f[1].Replace(" ", "")} {f[2]}").ToList();
        var parameters = model.NamedParameters().Select(p => p.Name).ToHashSet();
        string Kind(string name) => parameters.Contains(name) ? "param" : "buffer";
        var actual = model.StateDict()
            .Select(e => $"{e.Name} {Tensor.ShapeString(e.Tensor.Shape).Replace(" ", "")} {Kind(e.Name)}").ToList();
        Assert.Equal(expected, actual);
    }
}
