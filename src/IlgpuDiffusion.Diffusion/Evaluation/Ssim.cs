namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>
/// Structural similarity (Wang et al., 2004) as their reference code and pytorch-msssim compute it: images in [0, 1]
/// (data range 1), an 11×11 Gaussian window with σ = 1.5 over the valid positions only, C₁ = 0.01², C₂ = 0.03²; the
/// mean SSIM map over positions and channels. Smaller images use a window of the image size (same σ).
/// </summary>
public static class Ssim
{
    private const int Window = 11;
    private const double Sigma = 1.5, C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;

    /// <summary>SSIM of two C×S×S images with values in [−1, 1] (mapped to [0, 1]).</summary>
    public static double Compute(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int channels, int size)
    {
        if (a.Length != channels * size * size || b.Length != a.Length)
            throw new ArgumentException($"SSIM needs two {channels}×{size}×{size} images, got {a.Length} and {b.Length} values");
        int window = Math.Min(Window, size), valid = size - window + 1;
        var weights = GaussianWindow(window);
        int plane = size * size;
        double total = 0;
        var x = new double[plane];
        var y = new double[plane];
        var products = new double[5][];
        for (int c = 0; c < channels; c++)
        {
            for (int i = 0; i < plane; i++)
            {
                x[i] = (a[c * plane + i] + 1) / 2.0;
                y[i] = (b[c * plane + i] + 1) / 2.0;
            }
            products[0] = x;
            products[1] = y;
            products[2] = x.Select(v => v * v).ToArray();
            products[3] = y.Select(v => v * v).ToArray();
            products[4] = x.Zip(y, (u, v) => u * v).ToArray();
            var filtered = products.Select(p => Filter(p, size, weights, valid)).ToArray();
            for (int i = 0; i < valid * valid; i++)
            {
                double mx = filtered[0][i], my = filtered[1][i];
                double vx = filtered[2][i] - mx * mx, vy = filtered[3][i] - my * my, cxy = filtered[4][i] - mx * my;
                total += (2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
            }
        }
        return total / (channels * valid * valid);
    }

    private static double[] GaussianWindow(int window)
    {
        var w = Enumerable.Range(0, window).Select(i => Math.Exp(-Math.Pow(i - (window - 1) / 2.0, 2) / (2 * Sigma * Sigma))).ToArray();
        double sum = w.Sum();
        return w.Select(v => v / sum).ToArray();
    }

    /// <summary>The separable Gaussian filter over the valid positions: (valid × valid).</summary>
    private static double[] Filter(double[] image, int size, double[] weights, int valid)
    {
        int window = weights.Length;
        var rows = new double[size * valid];
        for (int r = 0; r < size; r++)
            for (int c = 0; c < valid; c++)
            {
                double s = 0;
                for (int k = 0; k < window; k++) s += weights[k] * image[r * size + c + k];
                rows[r * valid + c] = s;
            }
        var result = new double[valid * valid];
        for (int r = 0; r < valid; r++)
            for (int c = 0; c < valid; c++)
            {
                double s = 0;
                for (int k = 0; k < window; k++) s += weights[k] * rows[(r + k) * valid + c];
                result[r * valid + c] = s;
            }
        return result;
    }
}
