using ILGPU;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>Group normalisation: one thread group per (sample, channel group) row for the statistics and
/// dx, one group per channel for dγ and dβ. Rows are contiguous: perGroup·spatial values.</summary>
internal static class IlgpuNormKernels
{
    public static void GroupNormForward(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        ArrayView<float> mean, ArrayView<float> rstd, int spatial, int groups, int perGroup, float eps)
    {
        var shared = SharedMemory.Allocate<float>(IlgpuKernels.MaxRowGroupSize);
        int row = Grid.IdxX, t = Group.IdxX, n = perGroup * spatial, firstChannel = row % groups * perGroup;
        var xRow = x.SubView(row * n, n);
        var yRow = y.SubView(row * n, n);

        float sum = 0f;
        for (int j = t; j < n; j += Group.DimX) sum += xRow[j];
        float mu = IlgpuKernels.GroupReduce<SumReduce>(sum, shared) / n;
        float squares = 0f;
        for (int j = t; j < n; j += Group.DimX) squares += (xRow[j] - mu) * (xRow[j] - mu);
        float r = 1f / MathF.Sqrt(IlgpuKernels.GroupReduce<SumReduce>(squares, shared) / n + eps);
        if (t == 0)
        {
            mean[row] = mu;
            rstd[row] = r;
        }
        for (int j = t; j < n; j += Group.DimX)
        {
            int c = firstChannel + j / spatial;
            yRow[j] = (xRow[j] - mu) * r * gamma[c] + beta[c];
        }
    }

    /// <summary>dx = r·(γ·dy − A/n − x̂·B/n) with A = Σ γ·dy and B = Σ γ·dy·x̂ over the row.</summary>
    public static void GroupNormBackwardInput(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dy, ArrayView<float> dx, int spatial, int groups, int perGroup)
    {
        var shared = SharedMemory.Allocate<float>(IlgpuKernels.MaxRowGroupSize);
        int row = Grid.IdxX, t = Group.IdxX, n = perGroup * spatial, firstChannel = row % groups * perGroup;
        var xRow = x.SubView(row * n, n);
        var dyRow = dy.SubView(row * n, n);
        var dxRow = dx.SubView(row * n, n);
        float mu = mean[row], r = rstd[row];

        float a = 0f, b = 0f;
        for (int j = t; j < n; j += Group.DimX)
        {
            float g = gamma[firstChannel + j / spatial] * dyRow[j];
            a += g;
            b += g * (xRow[j] - mu) * r;
        }
        a = IlgpuKernels.GroupReduce<SumReduce>(a, shared) / n;
        b = IlgpuKernels.GroupReduce<SumReduce>(b, shared) / n;
        for (int j = t; j < n; j += Group.DimX)
        {
            float g = gamma[firstChannel + j / spatial] * dyRow[j];
            dxRow[j] = r * (g - a - (xRow[j] - mu) * r * b);
        }
    }

    /// <summary>One group per channel: dγ[c] = Σ dy·x̂ and dβ[c] = Σ dy over samples and positions.</summary>
    public static void GroupNormBackwardAffine(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> dy,
        ArrayView<float> dgamma, ArrayView<float> dbeta, int batch, int channels, int spatial, int groups, int perGroup)
    {
        var shared = SharedMemory.Allocate<float>(IlgpuKernels.MaxRowGroupSize);
        int c = Grid.IdxX, t = Group.IdxX, count = batch * spatial;
        float sumDy = 0f, sumDyXhat = 0f;
        for (int j = t; j < count; j += Group.DimX)
        {
            int b = j / spatial, s = j - b * spatial, row = b * groups + c / perGroup;
            int at = (b * channels + c) * spatial + s;
            sumDy += dy[at];
            sumDyXhat += dy[at] * (x[at] - mean[row]) * rstd[row];
        }
        sumDy = IlgpuKernels.GroupReduce<SumReduce>(sumDy, shared);
        sumDyXhat = IlgpuKernels.GroupReduce<SumReduce>(sumDyXhat, shared);
        if (t == 0)
        {
            dgamma[c] = sumDyXhat;
            dbeta[c] = sumDy;
        }
    }
}
