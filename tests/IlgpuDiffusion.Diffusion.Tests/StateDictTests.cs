using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>The models' state dicts have exactly the reference's names, shapes and order
/// (tests/fixtures/parity/state_dicts), so reference checkpoints load by name.</summary>
public class StateDictTests
{
    public static TheoryData<string> Listings() => new() { "vqvae_mnist", "vqvae_celebhq", "vae_mnist", "vae_celebhq", "unet_mnist", "unet_celebhq" };

    [Theory]
    [MemberData(nameof(Listings))]
    public void State_dict_matches_the_reference_listing(string listing)
    {
        var expected = File.ReadAllLines(Fixtures.Path($"parity/state_dicts/{listing}.txt"))
            .Where(line => line.Length > 0)
            .Select(line => line.Split('\t')[0] + " " + line.Split('\t')[1])
            .ToList();
        using var model = Build(listing, Device.Cpu);
        var actual = model.StateDict().Select(e => $"{e.Name} {Tensor.ShapeString(e.Tensor.Shape)}").ToList();
        Assert.Equal(expected, actual);
    }

    private static Module Build(string listing, Device device)
    {
        bool mnist = listing.EndsWith("mnist", StringComparison.Ordinal);
        var autoencoder = mnist ? ReferenceConfigs.MnistAutoencoder : ReferenceConfigs.CelebHqAutoencoder;
        int imChannels = mnist ? 1 : 3;
        return listing.Split('_')[0] switch
        {
            "vqvae" => new VqVae(device, imChannels, autoencoder),
            "vae" => new Vae(device, imChannels, autoencoder),
            _ => new UNet(device, autoencoder.ZChannels, mnist ? ReferenceConfigs.MnistLdm : ReferenceConfigs.CelebHqLdm),
        };
    }
}
