using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// Fused attention for short key sequences and narrow heads (the 7×7 latents' 49 tokens in heads of 8 or 16), one problem
/// at a time on one core: its scores, probabilities and their gradients (lq × lk) stay in that core's cache, and the
/// products run as register-blocked sums without packing. The batched-GEMM path spent most of its time packing and
/// padding such products (49 rows in 12-row panels, a depth of 8 or 16): this path ran them 1.3-1.7× faster, but
/// 10-40 % slower than the GEMMs for heads of 32 or 196 keys, hence the limits. Same maths and contract as
/// <see cref="CpuBackend.AttentionForward"/>: the backward pass recomputes the probabilities from logSumExp. Float32
/// accumulation only; rows of scores are padded to whole vectors.
/// </summary>
internal static unsafe class CpuSmallAttention
{
    private const int MaxKeys = 64, MaxHeadDim = 16;

    /// <summary>Short keys, narrow heads, float32 accumulation (float64 accumulation stays on the GEMMs).</summary>
    public static bool Serves(int lk, int d) =>
        lk <= MaxKeys && d <= MaxHeadDim && Precision.Gemm == GemmAccumulation.Float32 && Vector256.IsHardwareAccelerated;

    public static void Forward(float[] q, int qo, float[] k, int ko, float[] v, int vo, float[] o, int oo, float[] lse, int lseo,
        int bh, int lq, int lk, int d, float scale)
    {
        int keys = RoundUp(lk);
        CpuParallel.For(bh, 4L * lq * lk * d, (start, end) =>
        {
            float[] scratch = ArrayPool<float>.Shared.Rent(d * keys + lq * keys);
            fixed (float* pq = q, pk = k, pv = v, po = o, pl = lse, ps = scratch)
                for (int b = start; b < end; b++)
                {
                    long problem = (long)b * lk * d, rows = (long)b * lq * d;
                    float* kt = ps, s = ps + d * keys;
                    Transpose(pk + ko + problem, kt, lk, d, keys);
                    Probabilities(pq + qo + rows, kt, s, pl + lseo + (long)b * lq, lq, lk, d, keys, scale, recompute: false);
                    WeightedSums(s, keys, 1, pv + vo + problem, lk, d, 1f, po + oo + rows, lq);
                }
            ArrayPool<float>.Shared.Return(scratch);
        });
    }

    public static void Backward(float[] q, int qo, float[] k, int ko, float[] v, int vo, float[] o, int oo, float[] dO, int doo,
        float[] lse, int lseo, float[] dq, int dqo, float[] dk, int dko, float[] dv, int dvo, int bh, int lq, int lk, int d, float scale)
    {
        int keys = RoundUp(lk);
        CpuParallel.For(bh, 10L * lq * lk * d, (start, end) =>
        {
            float[] scratch = ArrayPool<float>.Shared.Rent(2 * d * keys + 2 * lq * keys);
            fixed (float* pq = q, pk = k, pv = v, po = o, pdo = dO, pl = lse, pdq = dq, pdk = dk, pdv = dv, ps = scratch)
                for (int b = start; b < end; b++)
                {
                    long problem = (long)b * lk * d, rows = (long)b * lq * d;
                    float* kt = ps, vt = kt + d * keys, p = vt + d * keys, ds = p + lq * keys;
                    float* qb = pq + qo + rows, kb = pk + ko + problem, dob = pdo + doo + rows;
                    Transpose(kb, kt, lk, d, keys);
                    Transpose(pv + vo + problem, vt, lk, d, keys);
                    Probabilities(qb, kt, p, pl + lseo + (long)b * lq, lq, lk, d, keys, scale, recompute: true);
                    // dS_ij = P_ij (dO_i·v_j − dO_i·o_i); dq_i = scale Σ_j dS_ij k_j
                    Scores(dob, vt, ds, lq, d, keys, 1f);
                    for (int i = 0; i < lq; i++)
                    {
                        float* pi = p + i * keys, dsi = ds + i * keys;
                        float delta = TensorPrimitives.Dot(new ReadOnlySpan<float>(dob + (long)i * d, d),
                            new ReadOnlySpan<float>(po + oo + rows + (long)i * d, d));
                        for (int j = 0; j < lk; j++) dsi[j] = pi[j] * (dsi[j] - delta);
                    }
                    WeightedSums(ds, keys, 1, kb, lk, d, scale, pdq + dqo + rows, lq);
                    // dv_j = Σ_i P_ij dO_i; dk_j = scale Σ_i dS_ij q_i
                    WeightedSums(p, 1, keys, dob, lq, d, 1f, pdv + dvo + problem, lk);
                    WeightedSums(ds, 1, keys, qb, lq, d, scale, pdk + dko + problem, lk);
                }
            ArrayPool<float>.Shared.Return(scratch);
        });
    }

    /// <summary>p (lq, keys) = softmax rows of scale·Q Kᵀ in columns [0, lk) (the padding columns hold values nothing
    /// reads). The forward pass writes each row's logSumExp; the backward pass (<paramref name="recompute"/>) subtracts the
    /// stored one instead of the row maximum.</summary>
    private static void Probabilities(float* q, float* kt, float* p, float* lse, int lq, int lk, int d, int keys, float scale,
        bool recompute)
    {
        Scores(q, kt, p, lq, d, keys, scale);
        for (int i = 0; i < lq; i++)
        {
            float* row = p + i * keys;
            float shift = recompute ? lse[i] : Max(row, lk);
            if (!recompute) lse[i] = shift;
            var vshift = Vector256.Create(shift);
            for (int j = 0; j < keys; j += Vector256<float>.Count) (Vector256.Load(row + j) - vshift).Store(row + j);
        }
        var all = new Span<float>(p, lq * keys);
        TensorPrimitives.Exp(all, all); // one call for the whole problem: per-row calls cost as much as the exponentials
        if (recompute) return;
        for (int i = 0; i < lq; i++)
        {
            float* row = p + i * keys;
            float sum = Sum(row, lk), inverse = 1f / sum;
            var vinverse = Vector256.Create(inverse);
            for (int j = 0; j < keys; j += Vector256<float>.Count) (Vector256.Load(row + j) * vinverse).Store(row + j);
            lse[i] += MathF.Log(sum);
        }
    }

    private static float Max(float* x, int n)
    {
        int i = 0;
        var max = Vector256.Create(float.NegativeInfinity);
        for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count) max = Vector256.Max(max, Vector256.Load(x + i));
        float result = float.NegativeInfinity;
        for (int lane = 0; lane < Vector256<float>.Count; lane++) result = MathF.Max(result, max.GetElement(lane));
        for (; i < n; i++) result = MathF.Max(result, x[i]);
        return result;
    }

    private static float Sum(float* x, int n)
    {
        int i = 0;
        var sum = Vector256<float>.Zero;
        for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count) sum += Vector256.Load(x + i);
        float result = Vector256.Sum(sum);
        for (; i < n; i++) result += x[i];
        return result;
    }

    /// <summary>s (rows, keys) = alpha · X (rows, d) · Yᵀ, with Yᵀ given as yt (d, keys).</summary>
    private static void Scores(float* x, float* yt, float* s, int rows, int d, int keys, float alpha)
    {
        WeightedSums(x, d, 1, yt, d, keys, alpha, s, rows);
    }

    /// <summary>yt (d, keys) = y (n, d) transposed, zero in columns n to keys.</summary>
    private static void Transpose(float* y, float* yt, int n, int d, int keys)
    {
        for (int c = 0; c < d; c++)
        {
            float* column = yt + c * keys;
            for (int j = 0; j < n; j++) column[j] = y[(long)j * d + c];
            for (int j = n; j < keys; j++) column[j] = 0f;
        }
    }

    /// <summary>output_i[0, width) = alpha · Σ_r w_i[r] · rows[r·width, …) for i &lt; outputs, the outputs width apart, where
    /// w_i[r] = weights[i·outputStep + r·weightStride] (a row of a matrix, or with the strides swapped its column): a small
    /// product without packing. Four outputs at a time share each loaded row, their sums held in registers.</summary>
    private static void WeightedSums(float* weights, int outputStep, int weightStride, float* rows, int count, int width,
        float alpha, float* output, int outputs)
    {
        int i = 0;
        for (; i <= outputs - 4; i += 4)
            FourWeightedSums(weights + (long)i * outputStep, outputStep, weightStride, rows, count, width, alpha,
                output + (long)i * width);
        for (; i < outputs; i++)
            WeightedSum(weights + (long)i * outputStep, weightStride, rows, count, width, alpha, output + (long)i * width);
    }

    private static void FourWeightedSums(float* weights, int outputStep, int weightStride, float* rows, int count, int width,
        float alpha, float* output)
    {
        const int Lanes = 8; // Vector256<float>.Count
        float* w0 = weights, w1 = weights + outputStep, w2 = weights + 2 * outputStep, w3 = weights + 3 * outputStep;
        var scale = Vector256.Create(alpha);
        int c = 0;
        for (; c <= width - 2 * Lanes; c += 2 * Lanes)
        {
            Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
            Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
            float* row = rows + c;
            for (long r = 0; r < count; r++, row += width)
            {
                Vector256<float> x0 = Vector256.Load(row), x1 = Vector256.Load(row + Lanes);
                long at = r * weightStride;
                var w = Vector256.Create(w0[at]);
                a00 = Vector256.FusedMultiplyAdd(w, x0, a00);
                a01 = Vector256.FusedMultiplyAdd(w, x1, a01);
                w = Vector256.Create(w1[at]);
                a10 = Vector256.FusedMultiplyAdd(w, x0, a10);
                a11 = Vector256.FusedMultiplyAdd(w, x1, a11);
                w = Vector256.Create(w2[at]);
                a20 = Vector256.FusedMultiplyAdd(w, x0, a20);
                a21 = Vector256.FusedMultiplyAdd(w, x1, a21);
                w = Vector256.Create(w3[at]);
                a30 = Vector256.FusedMultiplyAdd(w, x0, a30);
                a31 = Vector256.FusedMultiplyAdd(w, x1, a31);
            }
            (a00 * scale).Store(output + c);
            (a01 * scale).Store(output + c + Lanes);
            (a10 * scale).Store(output + width + c);
            (a11 * scale).Store(output + width + c + Lanes);
            (a20 * scale).Store(output + 2 * width + c);
            (a21 * scale).Store(output + 2 * width + c + Lanes);
            (a30 * scale).Store(output + 3 * width + c);
            (a31 * scale).Store(output + 3 * width + c + Lanes);
        }
        if (c == width) return;
        for (int k = 0; k < 4; k++) // the last columns, fewer than two vectors
            WeightedSum(weights + (long)k * outputStep, weightStride, rows + c, count, width - c, alpha, output + (long)k * width + c,
                rowStride: width);
    }

    /// <summary>One output of <see cref="WeightedSums"/> over columns [0, width), the rows rowStride apart.</summary>
    private static void WeightedSum(float* weights, int weightStride, float* rows, int count, int width, float alpha, float* output,
        int rowStride = -1)
    {
        const int Lanes = 8;
        if (rowStride < 0) rowStride = width;
        int c = 0;
        for (; c <= width - Lanes; c += Lanes)
        {
            Vector256<float> a = default;
            float* row = rows + c;
            for (long r = 0; r < count; r++, row += rowStride)
                a = Vector256.FusedMultiplyAdd(Vector256.Create(weights[r * weightStride]), Vector256.Load(row), a);
            (a * alpha).Store(output + c);
        }
        for (; c < width; c++)
        {
            float sum = 0f;
            for (long r = 0; r < count; r++) sum = MathF.FusedMultiplyAdd(weights[r * weightStride], rows[r * rowStride + c], sum);
            output[c] = alpha * sum;
        }
    }

    private static int RoundUp(int n) => (n + Vector256<float>.Count - 1) / Vector256<float>.Count * Vector256<float>.Count;
}
