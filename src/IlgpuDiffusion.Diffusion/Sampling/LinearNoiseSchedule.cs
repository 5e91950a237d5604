using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Sampling;

/// <summary>
/// The reference's DDPM noise schedule: β = linspace(sqrt(β_start), sqrt(β_end), T)², α = 1 − β,
/// ᾱ = cumulative product of α. The tables are float64 on the host; per-timestep coefficients are
/// converted to float32 only where they multiply tensors.
/// </summary>
public sealed class LinearNoiseSchedule
{
    public LinearNoiseSchedule(int numTimesteps, double betaStart, double betaEnd)
    {
        if (numTimesteps < 2)
            throw new ArgumentOutOfRangeException(nameof(numTimesteps), numTimesteps, "a schedule needs at least 2 timesteps");
        if (!(betaStart > 0 && betaEnd < 1 && betaStart <= betaEnd))
            throw new ArgumentException($"betas must satisfy 0 < beta_start ≤ beta_end < 1, got {betaStart} and {betaEnd}");
        NumTimesteps = numTimesteps;
        Betas = new double[numTimesteps];
        Alphas = new double[numTimesteps];
        AlphaCumProd = new double[numTimesteps];
        double first = Math.Sqrt(betaStart), last = Math.Sqrt(betaEnd), product = 1;
        for (int t = 0; t < numTimesteps; t++)
        {
            double root = first + (last - first) * t / (numTimesteps - 1);
            Betas[t] = root * root;
            Alphas[t] = 1 - Betas[t];
            AlphaCumProd[t] = product *= Alphas[t];
        }
    }

    public int NumTimesteps { get; }
    public double[] Betas { get; }
    public double[] Alphas { get; }
    public double[] AlphaCumProd { get; }

    /// <summary>x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·noise, with timestep <paramref name="t"/>[b] for sample b.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, IReadOnlyList<int> t)
    {
        int batch = x0.Size(0);
        if (t.Count != batch) throw new ArgumentException($"add_noise: {t.Count} timesteps for a batch of {batch}");
        foreach (int step in t)
            if (step < 0 || step >= NumTimesteps)
                throw new ArgumentOutOfRangeException(nameof(t), step, $"timesteps must be in [0, {NumTimesteps})");
        var shape = Enumerable.Repeat(1, x0.Rank).ToArray();
        shape[0] = batch;
        var signal = Tensor.FromArray(t.Select(s => (float)Math.Sqrt(AlphaCumProd[s])).ToArray(), shape, x0.Device);
        var noiseScale = Tensor.FromArray(t.Select(s => (float)Math.Sqrt(1 - AlphaCumProd[s])).ToArray(), shape, x0.Device);
        return x0 * signal + noise * noiseScale;
    }
}
