using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Sampling;

/// <summary>
/// Classifier-free guidance (the reference's sample_ddpm_*_cond.py): ε̂ = ε̂_uncond + s·(ε̂_cond − ε̂_uncond). The
/// conditional and the unconditional pass run as one UNet call on the batch stacked twice; s = 1 is the
/// conditional prediction alone and needs only the first half, so it runs just that.
/// </summary>
public static class ClassifierFreeGuidance
{
    public static Tensor PredictNoise(UNet unet, Tensor x, IReadOnlyList<int> timesteps, UNetConditions conditional,
        UNetConditions unconditional, double scale)
    {
        if (scale == 1) return unet.Forward(x, timesteps, conditional);
        int n = x.Size(0);
        static Tensor? Stack(Tensor? a, Tensor? b) => a == null || b == null ? a ?? b : Tensor.Concat([a, b], 0);
        var both = unet.Forward(Tensor.Concat([x, x], 0), [.. timesteps, .. timesteps], new UNetConditions(
            Stack(conditional.Class, unconditional.Class), Stack(conditional.Text, unconditional.Text),
            Stack(conditional.Image, unconditional.Image)));
        var withCondition = both.Slice(0, 0, n);
        var without = both.Slice(0, n, n);
        return without + (withCondition - without) * (float)scale;
    }
}
