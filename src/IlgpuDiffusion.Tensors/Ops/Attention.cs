using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

public sealed partial class Tensor
{
    /// <summary>Softmax(Q·Kᵀ·scale)·V over (…, L, D) operands: the attention core of every head. Executors that
    /// prefer it run the fused primitives, which never hold the (…, Lq, Lk) scores; others compose GEMMs and a softmax,
    /// scaling Q rather than the scores (as PyTorch's multi-head attention does: one pass over L·D, not L·L) and giving
    /// the scores back as soon as the softmax has read them.</summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale) =>
        CanFuseAttention(q, k, v)
            ? FusedAttention(q, k, v, scale)
            : TensorScope.Stage(() => q.Mul(scale).MatmulTransposed(k).Softmax(-1)).Matmul(v);

    /// <summary>Float q (…, Lq, D), k and v (…, Lk, D) with equal leading dims on one device that prefers fused
    /// attention, 1 ≤ D ≤ the fused kernels' limit and nothing empty. Anything else (including shapes the composed
    /// path rejects, so its error messages stay) takes the composed path.</summary>
    private static bool CanFuseAttention(Tensor q, Tensor k, Tensor v)
    {
        if (!q.Backend.PrefersFusedAttention || q.Device != k.Device || q.Device != v.Device) return false;
        if (q.DType != DType.Float32 || k.DType != DType.Float32 || v.DType != DType.Float32) return false;
        if (q.Rank < 2 || k.Rank != q.Rank || !k._shape.AsSpan().SequenceEqual(v._shape)) return false;
        if (!q._shape.AsSpan(0, q.Rank - 2).SequenceEqual(k._shape.AsSpan(0, k.Rank - 2))) return false;
        int d = q._shape[^1];
        return d == k._shape[^1] && d >= 1 && d <= IBackend.MaxFusedAttentionHeadDim && q.Count > 0 && k.Count > 0;
    }

    private static Tensor FusedAttention(Tensor q, Tensor k, Tensor v, float scale)
    {
        int lq = q._shape[^2], lk = k._shape[^2], d = q._shape[^1], bh = Layout.Product(q._shape, 0, q.Rank - 2);
        var o = new Tensor(q.Device, (int[])q._shape.Clone(), DType.Float32);
        var logSumExp = new Tensor(q.Device, [bh, lq], DType.Float32);
        q.Backend.AttentionForward(q.View, k.View, v.View, o.View, logSumExp.View, bh, lq, lk, d, scale);
        Record(o, "scaled_dot_product_attention", [q, k, v], [q, k, v, o, logSumExp], g =>
        {
            var dq = new Tensor(q.Device, (int[])q._shape.Clone(), DType.Float32);
            var dk = new Tensor(k.Device, (int[])k._shape.Clone(), DType.Float32);
            var dv = new Tensor(v.Device, (int[])v._shape.Clone(), DType.Float32);
            q.Backend.AttentionBackward(q.View, k.View, v.View, o.View, g.View, logSumExp.View, dq.View, dk.View, dv.View,
                bh, lq, lk, d, scale);
            return [GradientIfRequired(q, dq), GradientIfRequired(k, dk), GradientIfRequired(v, dv)];
        });
        if (!o.RequiresGrad) logSumExp.Dispose(); // only the backward reads it
        return o;
    }

    /// <summary>The kernels produce every gradient at once; those of inputs that need none are released here.</summary>
    private static Tensor? GradientIfRequired(Tensor input, Tensor gradient)
    {
        if (input.RequiresGrad) return gradient;
        gradient.Dispose();
        return null;
    }

    /// <summary>
    /// nn.MultiheadAttention forward (batch_first, no masks, no dropout): query (B, Lq, E), key/value
    /// (B, Lk, E); packed in_proj weight (3E, E) and bias (3E); out_proj (E, E) and (E).
    /// Self-attention (key == query) projects Q, K and V with one GEMM.
    /// </summary>
    public static Tensor MultiheadAttention(Tensor query, Tensor keyValue, int numHeads,
        Tensor inProjWeight, Tensor inProjBias, Tensor outProjWeight, Tensor outProjBias)
    {
        if (query.Rank != 3 || keyValue.Rank != 3 || query._shape[0] != keyValue._shape[0] || query._shape[2] != keyValue._shape[2])
            throw new ArgumentException($"multihead_attention: query {ShapeString(query._shape)} and key/value "
                + $"{ShapeString(keyValue._shape)} must be (B, L, E) with equal B and E");
        int batch = query._shape[0], lq = query._shape[1], lk = keyValue._shape[1], e = query._shape[2];
        if (e % numHeads != 0) throw new ArgumentException($"multihead_attention: embedding {e} is not divisible by {numHeads} heads");
        int headDim = e / numHeads;

        Tensor q, k, v;
        if (ReferenceEquals(query, keyValue))
        {
            var qkv = Linear(query, inProjWeight, inProjBias); // (B, L, 3E)
            q = qkv.Slice(2, 0, e); k = qkv.Slice(2, e, e); v = qkv.Slice(2, 2 * e, e);
        }
        else
        {
            q = Linear(query, inProjWeight.Slice(0, 0, e), inProjBias.Slice(0, 0, e));
            var kv = Linear(keyValue, inProjWeight.Slice(0, e, 2 * e), inProjBias.Slice(0, e, 2 * e));
            k = kv.Slice(2, 0, e); v = kv.Slice(2, e, e);
        }
        Tensor Heads(Tensor t, int length) => t.Reshape(batch, length, numHeads, headDim).Permute(0, 2, 1, 3);
        var attended = ScaledDotProductAttention(Heads(q, lq), Heads(k, lk), Heads(v, lk), 1f / MathF.Sqrt(headDim));
        var merged = attended.Permute(0, 2, 1, 3).Reshape(batch, lq, e);
        return Linear(merged, outProjWeight, outProjBias);
    }
}
