using ILGPU;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>Parameters of one Adam update (see <see cref="IBackend.AdamStep"/>).</summary>
internal struct AdamParams
{
    public float Beta1, Beta2, Eps, WeightDecay, StepSize, SqrtBiasCorrection2;
}

/// <summary>ILGPU kernels apart from GEMM. Views start at the operand's offset; int32 operands are
/// passed as <c>ArrayView&lt;int&gt;</c> casts of the same float buffers. Flags are ints because
/// kernel parameters must have the same layout on host and device.</summary>
internal static class IlgpuKernels
{
    /// <summary>Most threads per group of the row kernels (one group reduces one row): the size of their
    /// shared scratch. They stride by the launched group size, <c>Group.DimX</c>, which must be a power of two.</summary>
    public const int MaxRowGroupSize = 256;

    // Element kernels loop grid-stride over [0, count): one element per thread on a GPU, many per thread on
    // the CPU accelerator, where every extra group costs a hand-over between OS threads.
    private static int FirstIndex => Grid.GlobalIndex.X;

    private static int IndexStride => Grid.DimX * Group.DimX;

    // ---- memory ----

    public static void Fill(int count, ArrayView<float> y, float value)
    {
        for (int i = FirstIndex; i < count; i += IndexStride) y[i] = value;
    }

    /// <summary>Offsets of linear index <paramref name="linear"/> of <paramref name="shape"/> under three
    /// stride sets, in one pass over the dimensions.</summary>
    private static void Offsets(int linear, Dim6 shape, Dim6 stridesA, Dim6 stridesB, Dim6 stridesC, int rank,
        out int offsetA, out int offsetB, out int offsetC)
    {
        offsetA = 0;
        offsetB = 0;
        offsetC = 0;
        for (int d = rank - 1; d >= 0; d--)
        {
            int size = shape[d];
            int quotient = linear / size;
            int index = linear - quotient * size;
            linear = quotient;
            offsetA += index * stridesA[d];
            offsetB += index * stridesB[d];
            offsetC += index * stridesC[d];
        }
    }

    private static void Offsets(int linear, Dim6 shape, Dim6 stridesA, Dim6 stridesB, int rank, out int offsetA, out int offsetB) =>
        Offsets(linear, shape, stridesA, stridesB, default, rank, out offsetA, out offsetB, out _);

    public static void StridedCopy(int count, ArrayView<float> src, Dim6 srcStrides, ArrayView<float> dst, Dim6 dstStrides,
        Dim6 shape, int rank)
    {
        for (int i = FirstIndex; i < count; i += IndexStride)
        {
            Offsets(i, shape, srcStrides, dstStrides, rank, out int from, out int to);
            dst[to] = src[from];
        }
    }

    // ---- elementwise ----

    public static void Unary<TOp>(int count, ArrayView<float> x, ArrayView<float> y, float a, float b) where TOp : struct, IUnaryOp
    {
        for (int i = FirstIndex; i < count; i += IndexStride) y[i] = default(TOp).Apply(x[i], a, b);
    }

    public static void UnaryBackward<TOp>(int count, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx,
        float a, float b) where TOp : struct, IUnaryOp
    {
        for (int i = FirstIndex; i < count; i += IndexStride) dx[i] = dy[i] * default(TOp).Derivative(x[i], y[i], a, b);
    }

    public static void Binary<TOp>(int count, ArrayView<float> a, Dim6 aStrides, ArrayView<float> b, Dim6 bStrides, ArrayView<float> y,
        Dim6 shape, int rank) where TOp : struct, IBinaryOp
    {
        for (int i = FirstIndex; i < count; i += IndexStride)
        {
            Offsets(i, shape, aStrides, bStrides, rank, out int offsetA, out int offsetB);
            y[i] = default(TOp).Apply(a[offsetA], b[offsetB]);
        }
    }

    /// <summary>Both inputs contiguous with the output: no index arithmetic.</summary>
    public static void BinaryContiguous<TOp>(int count, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
        where TOp : struct, IBinaryOp
    {
        for (int i = FirstIndex; i < count; i += IndexStride) y[i] = default(TOp).Apply(a[i], b[i]);
    }

    public static void Where(int count, ArrayView<float> condition, Dim6 conditionStrides, ArrayView<float> a, Dim6 aStrides,
        ArrayView<float> b, Dim6 bStrides, ArrayView<float> y, Dim6 shape, int rank)
    {
        for (int i = FirstIndex; i < count; i += IndexStride)
        {
            Offsets(i, shape, conditionStrides, aStrides, bStrides, rank, out int offsetCondition, out int offsetA, out int offsetB);
            y[i] = condition[offsetCondition] != 0f ? a[offsetA] : b[offsetB];
        }
    }

    // ---- reductions over (outer, r, inner) ----

    /// <summary>One thread per output (o, i); neighbouring threads read neighbouring i (coalesced).</summary>
    public static void ReducePerOutput<TOp>(int count, ArrayView<float> x, ArrayView<float> y, int r, int inner)
        where TOp : struct, IReduceOp
    {
        for (int index = FirstIndex; index < count; index += IndexStride)
        {
            int o = index / inner, i = index - o * inner;
            int baseOffset = o * r * inner + i;
            float acc = default(TOp).Identity;
            for (int j = 0; j < r; j++) acc = default(TOp).Combine(acc, x[baseOffset + j * inner]);
            y[index] = acc;
        }
    }

    /// <summary>One group per contiguous row (inner == 1): strided partial results, then a tree.</summary>
    public static void ReduceRows<TOp>(ArrayView<float> x, ArrayView<float> y, int r) where TOp : struct, IReduceOp
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroupSize);
        int row = Grid.IdxX, t = Group.IdxX;
        var rowView = x.SubView(row * r, r);
        float acc = default(TOp).Identity;
        for (int j = t; j < r; j += Group.DimX) acc = default(TOp).Combine(acc, rowView[j]);
        acc = GroupReduce<TOp>(acc, shared);
        if (t == 0) y[row] = acc;
    }

    /// <summary>Combines one value per thread of the group; every thread gets the result. The final
    /// barrier lets the caller reuse <paramref name="shared"/> straight away.</summary>
    internal static float GroupReduce<TOp>(float value, ArrayView<float> shared) where TOp : struct, IReduceOp
    {
        int t = Group.IdxX;
        shared[t] = value;
        Group.Barrier();
        for (int step = Group.DimX / 2; step > 0; step >>= 1)
        {
            if (t < step) shared[t] = default(TOp).Combine(shared[t], shared[t + step]);
            Group.Barrier();
        }
        float result = shared[0];
        Group.Barrier();
        return result;
    }

    /// <summary>Index of the max (min != 0: min) over j; a strict comparison keeps the first of ties.</summary>
    public static void ArgReduce(int count, ArrayView<float> x, ArrayView<int> indices, int r, int inner, int min)
    {
        for (int index = FirstIndex; index < count; index += IndexStride)
        {
            int o = index / inner, i = index - o * inner;
            int baseOffset = o * r * inner + i;
            float best = x[baseOffset];
            int bestIndex = 0;
            for (int j = 1; j < r; j++)
            {
                float v = x[baseOffset + j * inner];
                if (min != 0 ? v < best : v > best)
                {
                    best = v;
                    bestIndex = j;
                }
            }
            indices[index] = bestIndex;
        }
    }

    // ---- softmax, one group per row ----

    public static void Softmax(ArrayView<float> x, ArrayView<float> y, int cols)
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroupSize);
        int t = Group.IdxX;
        var xRow = x.SubView(Grid.IdxX * cols, cols);
        var yRow = y.SubView(Grid.IdxX * cols, cols);

        float max = float.NegativeInfinity;
        for (int j = t; j < cols; j += Group.DimX) max = MathF.Max(max, xRow[j]);
        max = GroupReduce<MaxReduce>(max, shared);

        // Subtracting the row max keeps exp from overflowing.
        float sum = 0f;
        for (int j = t; j < cols; j += Group.DimX) sum += MathF.Exp(xRow[j] - max);
        float scale = 1f / GroupReduce<SumReduce>(sum, shared);

        for (int j = t; j < cols; j += Group.DimX) yRow[j] = MathF.Exp(xRow[j] - max) * scale;
    }

    public static void SoftmaxBackward(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int cols)
    {
        var shared = SharedMemory.Allocate<float>(MaxRowGroupSize);
        int t = Group.IdxX, start = Grid.IdxX * cols;
        var yRow = y.SubView(start, cols);
        var dyRow = dy.SubView(start, cols);
        var dxRow = dx.SubView(start, cols);

        float dot = 0f;
        for (int j = t; j < cols; j += Group.DimX) dot += dyRow[j] * yRow[j];
        dot = GroupReduce<SumReduce>(dot, shared);

        for (int j = t; j < cols; j += Group.DimX) dxRow[j] = yRow[j] * (dyRow[j] - dot);
    }

    // ---- indexing over (outer, n, inner); one thread per element of the k-sized side ----

    public static void IndexSelect(int count, ArrayView<float> x, ArrayView<int> idx, ArrayView<float> y, int n, int k, int inner)
    {
        for (int index = FirstIndex; index < count; index += IndexStride)
        {
            int i = index % inner, oj = index / inner;
            int o = oj / k, j = oj - o * k;
            int row = idx[j];
            y[index] = row >= 0 && row < n ? x[(o * n + row) * inner + i] : float.NaN;
        }
    }

    /// <summary>Repeated indices hit the same dx element from several threads, hence the atomic. Out-of-range
    /// indices add nothing (<see cref="IndexSelect"/> gave them NaN rows).</summary>
    public static void IndexAdd(int count, ArrayView<float> dy, ArrayView<int> idx, ArrayView<float> dx, int n, int k, int inner)
    {
        for (int index = FirstIndex; index < count; index += IndexStride)
        {
            int i = index % inner, oj = index / inner;
            int o = oj / k, j = oj - o * k;
            int row = idx[j];
            if (row >= 0 && row < n) Atomic.Add(ref dx[(o * n + row) * inner + i], dy[index]);
        }
    }

    // ---- convolution lowering ----

    /// <summary>One thread per column-matrix entry (b, c·KH·KW + kh·KW + kw, oh·OutW + ow).</summary>
    public static void Im2Col(int count, ArrayView<float> x, ArrayView<float> cols, ConvGeometry g)
    {
        for (int index = FirstIndex; index < count; index += IndexStride)
        {
            int colCount = g.OutH * g.OutW;
            int col = index % colCount, rowAndBatch = index / colCount;
            int rowCount = g.Channels * g.KH * g.KW;
            int row = rowAndBatch % rowCount, b = rowAndBatch / rowCount;
            int kw = row % g.KW, kh = row / g.KW % g.KH, c = row / (g.KW * g.KH);
            int ow = col % g.OutW, oh = col / g.OutW;
            int h = oh * g.StrideH - g.PadH + kh, w = ow * g.StrideW - g.PadW + kw;
            bool inside = h >= 0 && h < g.Height && w >= 0 && w < g.Width;
            cols[b * g.ImageStride + row * g.RowStride + col] = inside ? x[((b * g.Channels + c) * g.Height + h) * g.Width + w] : 0f;
        }
    }

    /// <summary>One thread per input pixel gathers every column entry that read it: no atomics.</summary>
    public static void Col2Im(int count, ArrayView<float> cols, ArrayView<float> dx, ConvGeometry g)
    {
        for (int index = FirstIndex; index < count; index += IndexStride)
        {
            int w = index % g.Width, h = index / g.Width % g.Height;
            int bc = index / (g.Width * g.Height);
            int c = bc % g.Channels, b = bc / g.Channels;
            int imageBase = b * g.ImageStride;
            float sum = 0f;
            for (int kh = 0; kh < g.KH; kh++)
            {
                int th = h + g.PadH - kh; // = oh · StrideH for the output row that read (h, kh)
                if (th < 0 || th % g.StrideH != 0) continue;
                int oh = th / g.StrideH;
                if (oh >= g.OutH) continue;
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int tw = w + g.PadW - kw;
                    if (tw < 0 || tw % g.StrideW != 0) continue;
                    int ow = tw / g.StrideW;
                    if (ow >= g.OutW) continue;
                    int row = (c * g.KH + kh) * g.KW + kw;
                    sum += cols[imageBase + row * g.RowStride + oh * g.OutW + ow];
                }
            }
            dx[index] = g.Accumulate ? dx[index] + sum : sum;
        }
    }

    // ---- optimiser and random numbers ----

    /// <summary>The weight-decayed gradient is a local value: the stored gradient is left as it was.</summary>
    public static void AdamStep(int count, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamParams a)
    {
        for (int i = FirstIndex; i < count; i += IndexStride)
        {
            float grad = g[i] + a.WeightDecay * p[i];
            float mi = a.Beta1 * m[i] + (1f - a.Beta1) * grad;
            float vi = a.Beta2 * v[i] + (1f - a.Beta2) * grad * grad;
            m[i] = mi;
            v[i] = vi;
            p[i] -= a.StepSize * mi / (MathF.Sqrt(vi) / a.SqrtBiasCorrection2 + a.Eps);
        }
    }

    public static void FillRandom(int count, ArrayView<float> y, ulong seed, ulong counterBase, int normal)
    {
        for (int i = FirstIndex; i < count; i += IndexStride)
        {
            ulong counter = counterBase + (ulong)i;
            y[i] = normal != 0 ? Philox.Normal(seed, counter) : Philox.Uniform(seed, counter);
        }
    }
}
