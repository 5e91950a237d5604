using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Blocks;

/// <summary>The sinusoidal timestep embedding: for i &lt; d/2, emb[b, i] = sin(t_b / 10000^(i/(d/2))) and
/// emb[b, d/2 + i] = cos(same). Computed in float64 on the host (the reference fixtures are float64), then
/// uploaded as float32 of shape (B, d).</summary>
public static class TimeEmbedding
{
    public static Tensor Sinusoidal(IReadOnlyList<int> timesteps, int dim, Device device) =>
        Sinusoidal(timesteps.Select(t => (double)t).ToArray(), dim, device);

    public static Tensor Sinusoidal(IReadOnlyList<float> timesteps, int dim, Device device) =>
        Sinusoidal(timesteps.Select(t => (double)t).ToArray(), dim, device);

    private static Tensor Sinusoidal(double[] timesteps, int dim, Device device)
    {
        if (dim <= 0 || dim % 2 != 0) throw new ArgumentException($"time embedding size must be positive and even, got {dim}", nameof(dim));
        int half = dim / 2;
        var values = new float[timesteps.Length * dim];
        for (int b = 0; b < timesteps.Length; b++)
            for (int i = 0; i < half; i++)
            {
                double angle = timesteps[b] / Math.Pow(10000.0, (double)i / half);
                values[b * dim + i] = (float)Math.Sin(angle);
                values[b * dim + half + i] = (float)Math.Cos(angle);
            }
        return Tensor.FromArray(values, [timesteps.Length, dim], device);
    }
}
