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
        if (q.Device != k.Device || q.Device != v.Device) return false;
        if (q.DType != DType.Float32 || k.DType != DType.Float32 || v.DType != DType.Float32) return false;
        if (q.Rank < 2 || k.Rank != q.Rank || !k._shape.AsSpan().SequenceEqual(v._shape)) return false;
        if (!q._shape.AsSpan(0, q.Rank - 2).SequenceEqual(k._shape.AsSpan(0, k.Rank - 2))) return false;
        int d = q._shape[^1];
        return d == k._shape[^1] && FusedAttentionServes(q.Backend, d, empty: q.Count == 0 || k.Count == 0);
    }

    /// <summary>Whether the executor prefers its fused primitives and they serve heads of dimension d (1 ≤ d ≤ their
    /// limit) over operands that are not empty.</summary>
    private static bool FusedAttentionServes(IBackend backend, int d, bool empty) =>
        backend.PrefersFusedAttention && d >= 1 && d <= IBackend.MaxFusedAttentionHeadDim && !empty;

    private static Tensor FusedAttention(Tensor q, Tensor k, Tensor v, float scale) =>
        FusedAttention([q, k, v], new(q.View, k.View, v.View), q._shape, k._shape[^2], scale, () =>
        {
            var gradients = new[] { q, k, v }.Select(t => new Tensor(t.Device, (int[])t._shape.Clone(), DType.Float32)).ToArray();
            return (gradients, new(gradients[0].View, gradients[1].View, gradients[2].View));
        });

    /// <summary>Self-attention over heads packed as (3, …, L, D): Q, K and V stacked in one tensor, which one copy makes
    /// from a packed in-projection (three slices and three head permutes made six). Returns (…, L, D); fused executors read
    /// the three parts in place and write their gradients into one packed tensor.</summary>
    private static Tensor ScaledDotProductSelfAttention(Tensor qkv, float scale)
    {
        var shape = qkv._shape[1..];
        int part = qkv.Count / 3;
        if (!FusedAttentionServes(qkv.Backend, shape[^1], empty: part == 0))
            return ScaledDotProductAttention(qkv.Slice(0, 0, 1).Reshape(shape), qkv.Slice(0, 1, 1).Reshape(shape),
                qkv.Slice(0, 2, 1).Reshape(shape), scale);
        return FusedAttention([qkv], new(qkv.View, qkv.View.At(part), qkv.View.At(2 * part)), shape, shape[^2], scale, () =>
        {
            var gradient = new Tensor(qkv.Device, (int[])qkv._shape.Clone(), DType.Float32);
            return ([gradient], new(gradient.View, gradient.View.At(part), gradient.View.At(2 * part)));
        });
    }

    /// <summary>Where the fused kernels read Q, K and V, or write their gradients.</summary>
    private readonly record struct AttentionParts(BufferView Q, BufferView K, BufferView V);

    /// <summary>The fused kernels over Q (…, Lq, D) and K, V (…, Lk, D) read from <paramref name="parts"/> of
    /// <paramref name="inputs"/>; the backward rule makes the inputs' gradients with <paramref name="gradients"/>.</summary>
    private static Tensor FusedAttention(Tensor[] inputs, AttentionParts parts, int[] qShape, int lk, float scale,
        Func<(Tensor[] Gradients, AttentionParts Parts)> gradients)
    {
        int lq = qShape[^2], d = qShape[^1], bh = Layout.Product(qShape, 0, qShape.Length - 2);
        var device = inputs[0].Device;
        var o = new Tensor(device, (int[])qShape.Clone(), DType.Float32);
        var logSumExp = new Tensor(device, [bh, lq], DType.Float32);
        device.Backend.AttentionForward(parts.Q, parts.K, parts.V, o.View, logSumExp.View, bh, lq, lk, d, scale);
        Record(o, "scaled_dot_product_attention", inputs, [.. inputs, o, logSumExp], g =>
        {
            var (grads, into) = gradients();
            device.Backend.AttentionBackward(parts.Q, parts.K, parts.V, o.View, g.View, logSumExp.View, into.Q, into.K, into.V,
                bh, lq, lk, d, scale);
            return inputs.Select((input, i) => GradientIfRequired(input, grads[i])).ToArray();
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

        float scale = 1f / MathF.Sqrt(headDim);
        // the projections and head copies go as soon as the heads' output exists (while no graph is recorded)
        var attended = TensorScope.Stage(() =>
        {
            Tensor Heads(Tensor t, int length) => t.Reshape(batch, length, numHeads, headDim).Permute(0, 2, 1, 3);
            if (ReferenceEquals(query, keyValue)) // (B, L, 3E) → (3, B, heads, L, D) in one copy
                return ScaledDotProductSelfAttention(Linear(query, inProjWeight, inProjBias)
                    .Reshape(batch, lq, 3, numHeads, headDim).Permute(2, 0, 3, 1, 4), scale);
            var q = Linear(query, inProjWeight.Slice(0, 0, e), inProjBias.Slice(0, 0, e));
            var kv = Linear(keyValue, inProjWeight.Slice(0, e, 2 * e), inProjBias.Slice(0, e, 2 * e));
            return ScaledDotProductAttention(Heads(q, lq), Heads(kv.Slice(2, 0, e), lk), Heads(kv.Slice(2, e, e), lk), scale);
        });
        var merged = attended.Permute(0, 2, 1, 3).Reshape(batch, lq, e);
        return Linear(merged, outProjWeight, outProjBias);
    }
}
