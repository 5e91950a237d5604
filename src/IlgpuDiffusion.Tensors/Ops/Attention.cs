namespace IlgpuDiffusion.Tensors;

public sealed partial class Tensor
{
    /// <summary>Softmax(Q·Kᵀ·scale)·V over (…, L, D) operands: the attention core of every head.</summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale) =>
        q.MatmulTransposed(k).Mul(scale).Softmax(-1).Matmul(v);

    /// <summary>
    /// nn.MultiheadAttention forward (batch_first, no masks, no dropout): query (B, Lq, E), key/value
    /// (B, Lk, E); packed in_proj weight (3E, E) and bias (3E); out_proj (E, E) and (E).
    /// Self-attention (key == query) projects Q, K and V with one GEMM.
    /// </summary>
    public static Tensor MultiheadAttention(Tensor query, Tensor keyValue, int numHeads,
        Tensor inProjWeight, Tensor inProjBias, Tensor outProjWeight, Tensor outProjBias)
    {
        if (query.Rank != 3 || keyValue.Rank != 3 || query._shape[0] != keyValue._shape[0] || query._shape[2] != keyValue._shape[2])
            throw new ArgumentException($"multihead_attention: query {ShapeString(query._shape)} and key/value {ShapeString(keyValue._shape)} must be (B, L, E) with equal B and E");
        int batch = query._shape[0], lq = query._shape[1], lk = keyValue._shape[1], e = query._shape[2];
        if (e % numHeads != 0) throw new ArgumentException($"multihead_attention: embedding {e} is not divisible by {numHeads} heads");
        int headDim = e / numHeads;

        // The key bias adds q·b_k to every score of a query's row, which softmax ignores: its true gradient
        // is zero. Leaving it out keeps that gradient exactly zero, as in the float64 reference, instead of
        // float32 round-off that Adam would blow up to full-size steps.
        var bias = Concat([inProjBias.Slice(0, 0, e), Zeros([e], inProjBias.Device), inProjBias.Slice(0, 2 * e, e)], 0);

        Tensor q, k, v;
        if (ReferenceEquals(query, keyValue))
        {
            var qkv = Linear(query, inProjWeight, bias); // (B, L, 3E)
            q = qkv.Slice(2, 0, e); k = qkv.Slice(2, e, e); v = qkv.Slice(2, 2 * e, e);
        }
        else
        {
            q = Linear(query, inProjWeight.Slice(0, 0, e), bias.Slice(0, 0, e));
            var kv = Linear(keyValue, inProjWeight.Slice(0, e, 2 * e), bias.Slice(0, e, 2 * e));
            k = kv.Slice(2, 0, e); v = kv.Slice(2, e, e);
        }
        Tensor Heads(Tensor t, int length) => t.Reshape(batch, length, numHeads, headDim).Permute(0, 2, 1, 3);
        var attended = ScaledDotProductAttention(Heads(q, lq), Heads(k, lk), Heads(v, lk), 1f / MathF.Sqrt(headDim));
        var merged = attended.Permute(0, 2, 1, 3).Reshape(batch, lq, e);
        return Linear(merged, outProjWeight, outProjBias);
    }
}
