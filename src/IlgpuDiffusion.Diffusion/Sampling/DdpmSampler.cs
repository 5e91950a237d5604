using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Sampling;

/// <summary>
/// The reference's ancestral DDPM step, over all T timesteps:
/// x̂0 = clamp((x_t − sqrt(1−ᾱ_t)·ε̂) / sqrt(ᾱ_t), −1, 1) (returned for display; the mean does not use it);
/// mean = (x_t − β_t·ε̂ / sqrt(1−ᾱ_t)) / sqrt(α_t);
/// x_{t−1} = mean + σ_t·z with σ_t² = β_t(1−ᾱ_{t−1})/(1−ᾱ_t), and no noise at t = 0.
/// </summary>
public sealed class DdpmSampler(LinearNoiseSchedule schedule) : ISampler
{
    public LinearNoiseSchedule Schedule { get; } = schedule;

    public IReadOnlyList<int> Timesteps => Enumerable.Range(0, Schedule.NumTimesteps).Reverse().ToArray();

    /// <summary>σ_t of the step from t (0 at t = 0).</summary>
    public double Sigma(int t) => t == 0 ? 0 :
        Math.Sqrt(Schedule.Betas[t] * (1 - Schedule.AlphaCumProd[t - 1]) / (1 - Schedule.AlphaCumProd[t]));

    /// <summary>One reverse step from <paramref name="t"/>; <paramref name="z"/> (shaped as x_t) is the
    /// Gaussian draw, unused (and may be null) at t = 0.</summary>
    public (Tensor XPrev, Tensor X0Pred) Step(Tensor xt, Tensor noisePred, int t, Tensor? z)
    {
        if (t < 0 || t >= Schedule.NumTimesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"timestep must be in [0, {Schedule.NumTimesteps})");
        double alphaBar = Schedule.AlphaCumProd[t], sqrtOneMinusAlphaBar = Math.Sqrt(1 - alphaBar);
        var x0 = ((xt - noisePred * (float)sqrtOneMinusAlphaBar) * (float)(1 / Math.Sqrt(alphaBar))).Clamp(-1f, 1f);
        var mean = (xt - noisePred * (float)(Schedule.Betas[t] / sqrtOneMinusAlphaBar)) * (float)(1 / Math.Sqrt(Schedule.Alphas[t]));
        if (t == 0) return (mean, x0);
        if (z == null) throw new ArgumentNullException(nameof(z), $"the DDPM step from t = {t} needs a Gaussian draw");
        return (mean + z * (float)Sigma(t), x0);
    }

    public Tensor Sample(Tensor xT, Func<Tensor, int, Tensor> predictNoise, Generator generator) =>
        SamplingLoop.Run(xT, Timesteps, (x, t) =>
        {
            var z = t > 0 ? Tensor.Randn(x.Shape.ToArray(), generator, x.Device) : null;
            return Step(x, predictNoise(x, t), t, z).XPrev;
        });
}
