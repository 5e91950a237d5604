using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>
/// The reference's PatchGAN discriminator: 4×4 convolutions with strides 2, 2, 2, 1 and padding 1,
/// channels im_channels → 64 → 128 → 256 → 1; bias only on the first; BatchNorm after the 2nd and
/// 3rd; LeakyReLU(0.2) after all but the last. The output is a grid of logits (B, 1, H', W').
/// Layer i is <c>layers.i</c> = Sequential(conv, BatchNorm or Identity, LeakyReLU or Identity), so the
/// state dict reads <c>layers.1.0.weight</c>, <c>layers.1.1.running_mean</c>, … as in the original.
/// </summary>
public sealed class Discriminator : Layer
{
    public Discriminator(Device device, int imChannels, int[]? convChannels = null, int[]? kernels = null,
        int[]? strides = null, int[]? paddings = null, Generator? init = null) : base(device)
    {
        int[] dims = [imChannels, .. convChannels ?? [64, 128, 256], 1];
        int count = dims.Length - 1;
        kernels ??= [4, 4, 4, 4];
        strides ??= [2, 2, 2, 1];
        paddings ??= [1, 1, 1, 1];
        if (kernels.Length != count || strides.Length != count || paddings.Length != count)
            throw new ArgumentException($"Discriminator: {count} layers need {count} kernels, strides and paddings");
        Layers = AddModule("layers", new ModuleList<Sequential>(device));
        for (int i = 0; i < count; i++)
        {
            bool first = i == 0, last = i == count - 1;
            Layers.Add(new Sequential(device,
                new Conv2d(device, dims[i], dims[i + 1], kernels[i], strides[i], paddings[i], bias: first, init),
                first || last ? new Identity(device) : new BatchNorm2d(device, dims[i + 1]),
                last ? new Identity(device) : new LeakyReLU(device, 0.2f)));
        }
    }

    public ModuleList<Sequential> Layers { get; }

    public override Tensor Forward(Tensor x)
    {
        foreach (var layer in Layers.Items) x = TensorScope.Stage(() => layer.Forward(x));
        return x;
    }
}
