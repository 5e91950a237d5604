namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>Forward values of the pooling ops against a naive host loop (the catalogue checks gradients).</summary>
public class PoolTests
{
    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("ilgpu-cpu")]
    [InlineData("opencl")]
    public void Max_pool_with_asymmetric_pads_ignores_the_padding(string device)
    {
        var dev = TestDevices.Open(device);
        const int n = 2, c = 3, h = 7, w = 6, k = 3, s = 2;
        var pads = new Padding2d(1, 1, 0, 0);
        var rng = new Random(5);
        // all negative: a zero pad would win
        var x = Enumerable.Range(0, n * c * h * w).Select(_ => -1f - (float)rng.NextDouble()).ToArray();
        int oh = (h + 1 - k) / s + 1, ow = (w + 1 - k) / s + 1;
        var expected = new float[n * c * oh * ow];
        for (int i = 0; i < n * c; i++)
            for (int y = 0; y < oh; y++)
                for (int z = 0; z < ow; z++)
                {
                    float best = float.NegativeInfinity;
                    for (int dy = 0; dy < k; dy++)
                        for (int dz = 0; dz < k; dz++)
                        {
                            int r = y * s + dy - pads.Top, q = z * s + dz - pads.Left;
                            if (r >= 0 && r < h && q >= 0 && q < w) best = Math.Max(best, x[(i * h + r) * w + q]);
                        }
                    expected[(i * oh + y) * ow + z] = best;
                }
        using var scope = new TensorScope();
        var result = Tensor.MaxPool2d(Tensor.FromArray(x, [n, c, h, w], dev), k, s, pads);
        Assert.Equal([n, c, oh, ow], result.Shape);
        Assert.Equal(expected, result.ToArray());
    }
}
