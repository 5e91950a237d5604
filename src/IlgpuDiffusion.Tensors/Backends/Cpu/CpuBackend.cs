using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// The managed executor: plain C# over float arrays, vectorised with TensorPrimitives (which uses
/// Vector256/Vector512 as the CPU allows) and spread over cores by CpuWorkers (persistent threads). Runs synchronously.
/// </summary>
public sealed class CpuBackend : IBackend
{
    public DeviceInfo Info { get; } = new("cpu",
        $"managed SIMD executor ({Environment.ProcessorCount} threads, {VectorInstructions})",
        GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, Environment.ProcessorCount);

    /// <summary>The widest vector instructions the JIT uses on this machine.</summary>
    private static string VectorInstructions =>
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512"
        : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2"
        : "scalar";

    public void Dispose() { }

    private static float[] A(BufferView v) => ((CpuBuffer)v.Buffer).Data;
    private static Span<float> S(BufferView v, int n) => A(v).AsSpan(v.Offset, n);
    private static Span<int> I(BufferView v, int n) => MemoryMarshal.Cast<float, int>(A(v).AsSpan(v.Offset, n));

    public DeviceBuffer Allocate(int length) => new CpuBuffer(length);
    public void Upload(ReadOnlySpan<float> source, BufferView destination) => source.CopyTo(S(destination, source.Length));
    public void Download(BufferView source, Span<float> destination) => S(source, destination.Length).CopyTo(destination);
    public void Synchronize() { }
    public void Fill(BufferView destination, int count, float value) => S(destination, count).Fill(value);

    public void StridedCopy(BufferView source, Dim6 sourceStrides, BufferView destination, Dim6 destinationStrides, Dim6 shape, int rank) =>
        CpuStridedCopy.Run(A(source), source.Offset, sourceStrides, A(destination), destination.Offset, destinationStrides, shape, rank);

    public void Unary<TOp>(BufferView x, BufferView y, int n, float a, float b) where TOp : struct, IUnaryOp
    {
        float[] xs = A(x), ys = A(y);
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(n, 8, (start, end) =>
            default(TOp).Apply(xs.AsSpan(xo + start, end - start), ys.AsSpan(yo + start, end - start), a, b));
    }

    public void UnaryBackward<TOp>(BufferView x, BufferView y, BufferView dy, BufferView dx, int n, float a, float b)
        where TOp : struct, IUnaryOp
    {
        float[] xs = A(x), ys = A(y), dys = A(dy), dxs = A(dx);
        int xo = x.Offset, yo = y.Offset, dyo = dy.Offset, dxo = dx.Offset;
        CpuParallel.For(n, 8, (start, end) =>
        {
            int length = end - start;
            default(TOp).Backward(xs.AsSpan(xo + start, length), ys.AsSpan(yo + start, length),
                dys.AsSpan(dyo + start, length), dxs.AsSpan(dxo + start, length), a, b);
        });
    }

    public void Binary<TOp>(BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides, BufferView y, Dim6 shape, int rank)
        where TOp : struct, IBinaryOp
    {
        float[] av = A(a), bv = A(b), yv = A(y);
        int inner = rank == 0 ? 1 : shape[rank - 1];
        int rows = 1;
        for (int d = 0; d < rank - 1; d++) rows *= shape[d];
        int ai = rank == 0 ? 0 : aStrides[rank - 1], bi = rank == 0 ? 0 : bStrides[rank - 1];
        int outerRank = Math.Max(rank - 1, 0);
        CpuParallel.For(rows, inner, (start, end) =>
        {
            var cursor = new RowCursor(start, shape, outerRank, aStrides, bStrides);
            for (int r = start; r < end; r++, cursor.Next())
            {
                int ao = a.Offset + cursor.Offset0, bo = b.Offset + cursor.Offset1;
                var yRow = yv.AsSpan(y.Offset + r * inner, inner);
                BinaryRow<TOp>(av, ao, ai, bv, bo, bi, yRow);
            }
        });
    }

    private static void BinaryRow<TOp>(float[] a, int ao, int ai, float[] b, int bo, int bi, Span<float> y) where TOp : struct, IBinaryOp
    {
        int n = y.Length;
        var op = default(TOp);
        if (ai == 1 && bi == 1) op.Apply(a.AsSpan(ao, n), b.AsSpan(bo, n), y);
        else if (ai == 1 && bi == 0) op.Apply(a.AsSpan(ao, n), b[bo], y);
        else for (int i = 0; i < n; i++) y[i] = op.Apply(a[ao + i * ai], b[bo + i * bi]);
    }

    public void Where(BufferView condition, Dim6 conditionStrides, BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides,
        BufferView y, Dim6 shape, int rank)
    {
        float[] cv = A(condition), av = A(a), bv = A(b), yv = A(y);
        int inner = shape[rank - 1], rows = Dim6.Count(shape, rank - 1), outerRank = rank - 1;
        int ci = conditionStrides[rank - 1], ai = aStrides[rank - 1], bi = bStrides[rank - 1];
        CpuParallel.For(rows, inner, (start, end) =>
        {
            var cursor = new RowCursor(start, shape, outerRank, conditionStrides, aStrides, bStrides);
            for (int r = start; r < end; r++, cursor.Next())
            {
                var yRow = yv.AsSpan(y.Offset + r * inner, inner);
                var c = new StridedRow(cv, condition.Offset + cursor.Offset0, ci);
                var ar = new StridedRow(av, a.Offset + cursor.Offset1, ai);
                var br = new StridedRow(bv, b.Offset + cursor.Offset2, bi);
                WhereRow(c, ar, br, yRow);
            }
        });
    }

    /// <summary>A row of an operand: element i at Data[Offset + i·Stride].</summary>
    private readonly record struct StridedRow(float[] Data, int Offset, int Stride)
    {
        public float this[int i] => Data[Offset + i * Stride];

        /// <summary>Elements i … i + Vector&lt;float&gt;.Count − 1 (for a stride of 0 or 1).</summary>
        public Vector<float> Load(int i) => Stride == 0 ? new Vector<float>(Data[Offset]) : new Vector<float>(Data.AsSpan(Offset + i));
    }

    /// <summary>Vectorised where each operand is contiguous along the row or broadcast over it.</summary>
    private static void WhereRow(StridedRow condition, StridedRow a, StridedRow b, Span<float> y)
    {
        int i = 0;
        if (condition.Stride <= 1 && a.Stride <= 1 && b.Stride <= 1)
            for (; i <= y.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var isZero = Vector.Equals(condition.Load(i), Vector<float>.Zero);
                Vector.ConditionalSelect(isZero, b.Load(i), a.Load(i)).CopyTo(y[i..]);
            }
        for (; i < y.Length; i++) y[i] = condition[i] != 0f ? a[i] : b[i];
    }

    public void Reduce<TOp>(BufferView x, BufferView y, int outer, int r, int inner) where TOp : struct, IReduceOp
    {
        float[] xs = A(x), ys = A(y);
        int xo = x.Offset, yo = y.Offset;
        var op = default(TOp);
        if (inner == 1)
        {
            CpuParallel.For(outer, r, (start, end) =>
            {
                for (int o = start; o < end; o++) ys[yo + o] = r == 0 ? op.Identity : op.Reduce(xs.AsSpan(xo + o * r, r));
            });
            return;
        }
        // Rows of length inner are combined with vector ops; split over outer and over column blocks of inner.
        const int columnBlock = 2048;
        int blocks = (inner + columnBlock - 1) / columnBlock;
        CpuParallel.For(outer * blocks, (long)r * Math.Min(inner, columnBlock), (start, end) =>
        {
            for (int t = start; t < end; t++)
            {
                int o = t / blocks, c0 = t % blocks * columnBlock, len = Math.Min(columnBlock, inner - c0);
                var acc = ys.AsSpan(yo + o * inner + c0, len);
                acc.Fill(op.Identity);
                for (int j = 0; j < r; j++) op.Combine(acc, xs.AsSpan(xo + (o * r + j) * inner + c0, len));
            }
        });
    }

    public void ArgReduce(BufferView x, BufferView indices, int outer, int r, int inner, bool min)
    {
        float[] xs = A(x);
        int xo = x.Offset;
        var idxArray = A(indices);
        int io = indices.Offset;
        CpuParallel.For(outer * inner, r, (start, end) =>
        {
            var idx = MemoryMarshal.Cast<float, int>(idxArray.AsSpan(io, outer * inner));
            for (int t = start; t < end; t++)
            {
                int o = t / inner, i = t % inner;
                int best = 0;
                float bestValue = xs[xo + o * r * inner + i];
                for (int j = 1; j < r; j++)
                {
                    float v = xs[xo + (o * r + j) * inner + i];
                    if (min ? v < bestValue : v > bestValue) { bestValue = v; best = j; }
                }
                idx[t] = best;
            }
        });
    }

    public void Gemm(in GemmArgs args) => CpuGemm.Run(args);

    public void Softmax(BufferView x, BufferView y, int rows, int cols)
    {
        float[] xs = A(x), ys = A(y);
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(rows, 4L * cols, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var xr = xs.AsSpan(xo + r * cols, cols);
                var yr = ys.AsSpan(yo + r * cols, cols);
                float max = TensorPrimitives.Max(xr);
                TensorPrimitives.Subtract(xr, max, yr);
                TensorPrimitives.Exp(yr, yr);
                TensorPrimitives.Multiply(yr, 1f / TensorPrimitives.Sum(yr), yr);
            }
        });
    }

    public void SoftmaxBackward(BufferView y, BufferView dy, BufferView dx, int rows, int cols)
    {
        float[] ys = A(y), dys = A(dy), dxs = A(dx);
        int yo = y.Offset, dyo = dy.Offset, dxo = dx.Offset;
        CpuParallel.For(rows, 3L * cols, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var yr = ys.AsSpan(yo + r * cols, cols);
                var dyr = dys.AsSpan(dyo + r * cols, cols);
                var dxr = dxs.AsSpan(dxo + r * cols, cols);
                float dot = TensorPrimitives.Dot(dyr, yr);
                TensorPrimitives.Subtract(dyr, dot, dxr);
                TensorPrimitives.Multiply(dxr, yr, dxr);
            }
        });
    }

    public void GroupNormForward(BufferView x, BufferView gamma, BufferView beta, BufferView y, BufferView mean, BufferView rstd,
        int batch, int channels, int spatial, int groups, float eps)
    {
        float[] xs = A(x), ys = A(y), gs = A(gamma), bs = A(beta), means = A(mean), rstds = A(rstd);
        int perGroup = channels / groups, n = perGroup * spatial;
        int xo = x.Offset, yo = y.Offset, go = gamma.Offset, bo = beta.Offset, mo = mean.Offset, ro = rstd.Offset;
        CpuParallel.For(batch * groups, 3L * n, (start, end) =>
        {
            var centred = System.Buffers.ArrayPool<float>.Shared.Rent(n);
            for (int bg = start; bg < end; bg++)
            {
                var xg = xs.AsSpan(xo + bg * n, n);
                // two passes: the centred sum of squares keeps float32 variance accurate
                float mu = TensorPrimitives.Sum(xg) / n;
                TensorPrimitives.Subtract(xg, mu, centred.AsSpan(0, n));
                float r = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(centred.AsSpan(0, n)) / n + eps);
                means[mo + bg] = mu;
                rstds[ro + bg] = r;
                for (int cg = 0; cg < perGroup; cg++)
                {
                    int c = bg % groups * perGroup + cg;
                    float scale = r * gs[go + c], shift = bs[bo + c] - mu * scale;
                    var yc = ys.AsSpan(yo + bg * n + cg * spatial, spatial);
                    TensorPrimitives.Multiply(xg.Slice(cg * spatial, spatial), scale, yc);
                    TensorPrimitives.Add(yc, shift, yc);
                }
            }
            System.Buffers.ArrayPool<float>.Shared.Return(centred);
        });
    }

    public void GroupNormBackward(BufferView x, BufferView gamma, BufferView mean, BufferView rstd, BufferView dy,
        BufferView dx, BufferView dgamma, BufferView dbeta, int batch, int channels, int spatial, int groups)
    {
        float[] xs = A(x), gs = A(gamma), means = A(mean), rstds = A(rstd), dys = A(dy), dxs = A(dx);
        int perGroup = channels / groups, n = perGroup * spatial;
        int xo = x.Offset, go = gamma.Offset, mo = mean.Offset, ro = rstd.Offset, dyo = dy.Offset, dxo = dx.Offset;
        // per (sample, channel): Σ dy and Σ dy·x, reduced over the batch for dγ and dβ afterwards
        var sumDy = new float[batch * channels];
        var sumDyX = new float[batch * channels];
        CpuParallel.For(batch * groups, 4L * n, (start, end) =>
        {
            for (int bg = start; bg < end; bg++)
            {
                int b = bg / groups, g = bg % groups;
                float mu = means[mo + bg], r = rstds[ro + bg];
                float a = 0f, bsum = 0f; // Σ γ·dy and Σ γ·dy·x̂ over the group
                for (int cg = 0; cg < perGroup; cg++)
                {
                    int c = g * perGroup + cg, at = bg * n + cg * spatial;
                    var dyc = dys.AsSpan(dyo + at, spatial);
                    float s1 = TensorPrimitives.Sum(dyc), s2 = TensorPrimitives.Dot(dyc, xs.AsSpan(xo + at, spatial));
                    sumDy[b * channels + c] = s1;
                    sumDyX[b * channels + c] = s2;
                    a += gs[go + c] * s1;
                    bsum += gs[go + c] * r * (s2 - mu * s1);
                }
                // dx = r·(γ·dy − A/n − x̂·B/n) = c1·dy + c2·x + c3 per channel
                float c2 = -r * r * bsum / n, c3 = -r * a / n + mu * r * r * bsum / n;
                for (int cg = 0; cg < perGroup; cg++)
                {
                    int c = g * perGroup + cg, at = bg * n + cg * spatial;
                    float c1 = r * gs[go + c];
                    var dxc = dxs.AsSpan(dxo + at, spatial);
                    TensorPrimitives.Multiply(xs.AsSpan(xo + at, spatial), c2, dxc);
                    TensorPrimitives.MultiplyAdd(dys.AsSpan(dyo + at, spatial), c1, dxc, dxc);
                    TensorPrimitives.Add(dxc, c3, dxc);
                }
            }
        });
        var dg = S(dgamma, channels);
        var db = S(dbeta, channels);
        dg.Clear();
        db.Clear();
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < channels; c++)
            {
                int bg = b * groups + c / perGroup;
                float mu = means[mo + bg], r = rstds[ro + bg];
                db[c] += sumDy[b * channels + c];
                dg[c] += r * (sumDyX[b * channels + c] - mu * sumDy[b * channels + c]);
            }
    }

    // ---- fused attention: short key sequences one problem per core in its cache (CpuSmallAttention); longer ones a group
    // of problems at a time through batched GEMMs, so the (problems, lq, lk) scores exist for one group only (at most
    // AttentionScoreElements, at least one problem). Both recompute the scores in the backward pass from logSumExp
    // instead of keeping them from the forward pass ----

    /// <summary>Most score elements held at once (4 MiB), unless one problem needs more.</summary>
    private const int AttentionScoreElements = 1 << 20;

    public bool PrefersFusedAttention => true;

    public void AttentionForward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView logSumExp,
        int bh, int lq, int lk, int d, float scale)
    {
        var precision = Precision.Gemm;
        if (CpuSmallAttention.Serves(lk, d))
        {
            CpuSmallAttention.Forward(A(q), q.Offset, A(k), k.Offset, A(v), v.Offset, A(o), o.Offset, A(logSumExp), logSumExp.Offset,
                bh, lq, lk, d, scale);
            return;
        }
        using var scores = new ScratchBuffer(AttentionGroup(bh, lq, lk) * lq * lk);
        foreach (var (first, n) in AttentionGroups(bh, lq, lk))
        {
            var s = new GemmOperand(scores.View, lk).Batched(lq * lk);
            Gemm(new GemmArgs(lq, lk, d, Rows(q, first, lq, d), Rows(k, first, lk, d) with { Transposed = true }, s)
            { Alpha = scale, Batch = n, Accumulation = precision });
            float[] ps = scores.Data, lses = A(logSumExp);
            int lseOffset = logSumExp.Offset + first * lq;
            CpuParallel.For(n * lq, 4L * lk, (start, end) =>
            {
                for (int row = start; row < end; row++)
                {
                    var p = ps.AsSpan(row * lk, lk);
                    float max = TensorPrimitives.Max(p);
                    TensorPrimitives.Subtract(p, max, p);
                    TensorPrimitives.Exp(p, p);
                    float sum = TensorPrimitives.Sum(p);
                    TensorPrimitives.Multiply(p, 1f / sum, p);
                    lses[lseOffset + row] = max + MathF.Log(sum);
                }
            });
            Gemm(new GemmArgs(lq, d, lk, s, Rows(v, first, lk, d), Rows(o, first, lq, d)) { Batch = n, Accumulation = precision });
        }
    }

    public void AttentionBackward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView dO, BufferView logSumExp,
        BufferView dq, BufferView dk, BufferView dv, int bh, int lq, int lk, int d, float scale)
    {
        var precision = Precision.Gemm;
        if (CpuSmallAttention.Serves(lk, d))
        {
            CpuSmallAttention.Backward(A(q), q.Offset, A(k), k.Offset, A(v), v.Offset, A(o), o.Offset, A(dO), dO.Offset,
                A(logSumExp), logSumExp.Offset, A(dq), dq.Offset, A(dk), dk.Offset, A(dv), dv.Offset, bh, lq, lk, d, scale);
            return;
        }
        int group = AttentionGroup(bh, lq, lk);
        using var probabilities = new ScratchBuffer(group * lq * lk);
        using var scoreGradients = new ScratchBuffer(group * lq * lk);
        float[] qs = A(q), os = A(o), dos = A(dO), lses = A(logSumExp), ps = probabilities.Data, dss = scoreGradients.Data;
        foreach (var (first, n) in AttentionGroups(bh, lq, lk))
        {
            var p = new GemmOperand(probabilities.View, lk).Batched(lq * lk);
            var ds = new GemmOperand(scoreGradients.View, lk).Batched(lq * lk);
            var (qRows, kRows) = (Rows(q, first, lq, d), Rows(k, first, lk, d));
            var (vRows, doRows) = (Rows(v, first, lk, d), Rows(dO, first, lq, d));
            Gemm(new GemmArgs(lq, lk, d, qRows, kRows with { Transposed = true }, p)
            { Alpha = scale, Batch = n, Accumulation = precision });
            Gemm(new GemmArgs(lq, lk, d, doRows, vRows with { Transposed = true }, ds) { Batch = n, Accumulation = precision });
            // P = exp(S − logSumExp); dS = P (dP − dO_i·o_i)
            int firstRow = first * lq;
            CpuParallel.For(n * lq, 6L * lk + 2L * d, (start, end) =>
            {
                for (int row = start; row < end; row++)
                {
                    int global = firstRow + row;
                    var pr = ps.AsSpan(row * lk, lk);
                    var dsr = dss.AsSpan(row * lk, lk);
                    TensorPrimitives.Subtract(pr, lses[logSumExp.Offset + global], pr);
                    TensorPrimitives.Exp(pr, pr);
                    float delta = TensorPrimitives.Dot(dos.AsSpan(dO.Offset + global * d, d), os.AsSpan(o.Offset + global * d, d));
                    TensorPrimitives.Subtract(dsr, delta, dsr);
                    TensorPrimitives.Multiply(dsr, pr, dsr);
                }
            });
            Gemm(new GemmArgs(lk, d, lq, p with { Transposed = true }, doRows, Rows(dv, first, lk, d))
            { Batch = n, Accumulation = precision });
            Gemm(new GemmArgs(lq, d, lk, ds, kRows, Rows(dq, first, lq, d)) { Alpha = scale, Batch = n, Accumulation = precision });
            Gemm(new GemmArgs(lk, d, lq, ds with { Transposed = true }, qRows, Rows(dk, first, lk, d))
            { Alpha = scale, Batch = n, Accumulation = precision });
        }
    }

    private static int AttentionGroup(int bh, int lq, int lk) => (int)Math.Clamp(AttentionScoreElements / ((long)lq * lk), 1, bh);

    /// <summary>(first problem, problems) of each group.</summary>
    private static IEnumerable<(int First, int Count)> AttentionGroups(int bh, int lq, int lk)
    {
        int group = AttentionGroup(bh, lq, lk);
        for (int first = 0; first < bh; first += group) yield return (first, Math.Min(group, bh - first));
    }

    /// <summary>The (rows, d) matrices of the problems from <paramref name="first"/> on, one per batch entry.</summary>
    private static GemmOperand Rows(BufferView x, int first, int rows, int d) =>
        new GemmOperand(x.At(first * rows * d), d).Batched(rows * d);

    /// <summary>A pooled host array as a <see cref="CpuBuffer"/>, for a primitive's own temporaries.</summary>
    private readonly struct ScratchBuffer(int length) : IDisposable
    {
        public float[] Data { get; } = ArrayPool<float>.Shared.Rent(length);
        public BufferView View => new(new CpuBuffer(Data), 0);
        public void Dispose() => ArrayPool<float>.Shared.Return(Data);
    }

    public void IndexSelect(BufferView x, BufferView idx, BufferView y, int outer, int n, int k, int inner)
    {
        float[] xs = A(x), ys = A(y);
        int[] indices = I(idx, k).ToArray();
        int xo = x.Offset, yo = y.Offset;
        CpuParallel.For(outer * k, inner, (start, end) =>
        {
            for (int t = start; t < end; t++)
            {
                int o = t / k, j = t % k;
                Array.Copy(xs, xo + (o * n + indices[j]) * inner, ys, yo + t * inner, inner);
            }
        });
    }

    public void IndexAdd(BufferView dy, BufferView idx, BufferView dx, int outer, int n, int k, int inner)
    {
        float[] dys = A(dy), dxs = A(dx);
        ReadOnlySpan<int> indices = I(idx, k);
        // serial over j: repeated indices write the same rows
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < k; j++)
            {
                var target = dxs.AsSpan(dx.Offset + (o * n + indices[j]) * inner, inner);
                TensorPrimitives.Add(target, dys.AsSpan(dy.Offset + (o * k + j) * inner, inner), target);
            }
    }

    public void Im2Col(BufferView x, BufferView cols, in ConvGeometry g) =>
        CpuConvLowering.Im2Col(A(x), x.Offset, A(cols), cols.Offset, g);

    public bool GathersConvPatches => true;

    public void ConvGemm(BufferView a, BufferView x, BufferView c, int m, in ConvGeometry g, bool transposed) =>
        CpuGemm.ConvGemm(A(a), a.Offset, A(x), x.Offset, A(c), c.Offset, m, g, transposed);

    public void Col2Im(BufferView cols, BufferView dx, in ConvGeometry g) =>
        CpuConvLowering.Col2Im(A(cols), cols.Offset, A(dx), dx.Offset, g);

    public void AdamStep(BufferView p, BufferView g, BufferView m, BufferView v, int n,
        float beta1, float beta2, float eps, float weightDecay, float stepSize, float sqrtBiasCorrection2)
    {
        float[] ps = A(p), gs = A(g), ms = A(m), vs = A(v);
        int po = p.Offset, go = g.Offset, mo = m.Offset, vo = v.Offset;
        CpuParallel.For(n, 16, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                float grad = gs[go + i] + weightDecay * ps[po + i];
                float mi = ms[mo + i] = beta1 * ms[mo + i] + (1f - beta1) * grad;
                float vi = vs[vo + i] = beta2 * vs[vo + i] + (1f - beta2) * grad * grad;
                ps[po + i] -= stepSize * mi / (MathF.Sqrt(vi) / sqrtBiasCorrection2 + eps);
            }
        });
    }

    public void FillRandom(BufferView y, int n, ulong seed, ulong counterBase, bool normal)
    {
        float[] ys = A(y);
        int yo = y.Offset;
        CpuParallel.For(n, 64, (start, end) =>
        {
            for (int i = start; i < end; i++)
                ys[yo + i] = normal ? Philox.Normal(seed, counterBase + (ulong)i) : Philox.Uniform(seed, counterBase + (ulong)i);
        });
    }
}
