using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>State-dict names, shapes and order equal the original's listings (fixtures/parity/state_dicts).</summary>
public class StateDictTests
{
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
        var actual = model.StateDict()
            .Select(e => $"{e.Name} {Tensor.ShapeString(e.Tensor.Shape).Replace(" ", "")} {(parameters.Contains(e.Name) ? "param" : "buffer")}").ToList();
        Assert.Equal(expected, actual);
    }
}
