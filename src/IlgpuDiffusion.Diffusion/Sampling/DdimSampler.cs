using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Sampling;

/// <summary>
/// DDIM (Song et al., 2021) over S ≤ T evenly spaced timesteps τ_i = ⌊i·T/S⌋, i = S−1 … 0. From τ = t to
/// the previous visited timestep s (ᾱ_s = 1 after the last step):
/// x̂0 = (x_t − sqrt(1−ᾱ_t)·ε̂) / sqrt(ᾱ_t);
/// σ = η·sqrt((1−ᾱ_s)/(1−ᾱ_t))·sqrt(1 − ᾱ_t/ᾱ_s);
/// x_s = sqrt(ᾱ_s)·x̂0 + sqrt(1−ᾱ_s−σ²)·ε̂ + σ·z.
/// η = 0 is deterministic; with S = T and η = 1 it is the DDPM ancestral step (σ² = β_t(1−ᾱ_{t−1})/(1−ᾱ_t),
/// same mean). As in the reference's DDPM step, x̂0 is clamped to [−1, 1] only in the value returned for display.
/// </summary>
public sealed class DdimSampler : ISampler
{
    private readonly int[] _timesteps;

    public DdimSampler(LinearNoiseSchedule schedule, int steps, double eta = 0)
    {
        // one-line messages: the CLI shows them as they are (--steps, --eta)
        if (steps < 1 || steps > schedule.NumTimesteps)
            throw new ArgumentException($"DDIM steps (--steps) must be in [1, {schedule.NumTimesteps}] (num_timesteps), got {steps}");
        if (!(eta >= 0 && double.IsFinite(eta))) throw new ArgumentException($"DDIM eta (--eta) must be a finite number ≥ 0, got {eta}");
        Schedule = schedule;
        Eta = eta;
        _timesteps = Enumerable.Range(0, steps).Select(i => (int)((long)i * schedule.NumTimesteps / steps)).Reverse().ToArray();
    }

    public LinearNoiseSchedule Schedule { get; }
    public double Eta { get; }
    public IReadOnlyList<int> Timesteps => _timesteps;

    /// <summary>The timestep visited after <paramref name="t"/>, or −1 after the last.</summary>
    public int Previous(int t)
    {
        int i = Array.IndexOf(_timesteps, t);
        if (i < 0) throw new ArgumentException($"timestep {t} is not one of this sampler's {_timesteps.Length} timesteps", nameof(t));
        return i + 1 < _timesteps.Length ? _timesteps[i + 1] : -1;
    }

    private double AlphaBar(int t) => t < 0 ? 1 : Schedule.AlphaCumProd[t];

    /// <summary>σ of the step from <paramref name="t"/> to <see cref="Previous"/>(t).</summary>
    public double Sigma(int t)
    {
        double alphaBar = AlphaBar(t), alphaBarPrev = AlphaBar(Previous(t));
        return Eta * Math.Sqrt((1 - alphaBarPrev) / (1 - alphaBar) * (1 - alphaBar / alphaBarPrev));
    }

    /// <summary>One step from <paramref name="t"/>; <paramref name="z"/> is needed only when σ &gt; 0.</summary>
    public (Tensor XPrev, Tensor X0Pred) Step(Tensor xt, Tensor noisePred, int t, Tensor? z)
    {
        double alphaBar = AlphaBar(t), alphaBarPrev = AlphaBar(Previous(t)), sigma = Sigma(t);
        var x0 = (xt - noisePred * (float)Math.Sqrt(1 - alphaBar)) * (float)(1 / Math.Sqrt(alphaBar));
        var xPrev = x0 * (float)Math.Sqrt(alphaBarPrev) + noisePred * (float)Math.Sqrt(Math.Max(0, 1 - alphaBarPrev - sigma * sigma));
        if (sigma > 0)
        {
            if (z == null) throw new ArgumentNullException(nameof(z), $"the DDIM step from t = {t} with eta = {Eta} needs a Gaussian draw");
            xPrev = xPrev + z * (float)sigma;
        }
        return (xPrev, x0.Clamp(-1f, 1f));
    }

    public Tensor Sample(Tensor xT, Func<Tensor, int, Tensor> predictNoise, Generator generator) =>
        SamplingLoop.Run(xT, _timesteps, (x, t) =>
        {
            var z = Sigma(t) > 0 ? Tensor.Randn(x.Shape.ToArray(), generator, x.Device) : null;
            return Step(x, predictNoise(x, t), t, z).XPrev;
        });
}
