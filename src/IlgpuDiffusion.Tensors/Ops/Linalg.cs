using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

// Matrix products on the executor's GEMM; transposed operands are read in place, never materialised.
public sealed partial class Tensor
{
    /// <summary>
    /// Matrix product with PyTorch's rules for the cases a model needs: (M,K)@(K,N); batched
    /// (…,M,K)@(…,K,N) with equal batch dims; and (…,M,K)@(K,N) (the 2-D right operand is shared).
    /// </summary>
    public Tensor Matmul(Tensor other) => MatmulCore(this, other, transA: false, transB: false, "matmul");

    /// <summary>this @ otherᵀ over the last two dims, without a transposed copy (e.g. x·Wᵀ in Linear, Q·Kᵀ).</summary>
    public Tensor MatmulTransposed(Tensor other) => MatmulCore(this, other, transA: false, transB: true, "matmul");

    internal static Tensor MatmulCore(Tensor a, Tensor b, bool transA, bool transB, string op)
    {
        a.RequireDType(DType.Float32, op);
        b.RequireDType(DType.Float32, op);
        CheckSameDevice(a, b, op);
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"{op}: both operands need at least 2 dimensions, got {ShapeString(a._shape)} and {ShapeString(b._shape)}");
        int m = transA ? a._shape[^1] : a._shape[^2], ka = transA ? a._shape[^2] : a._shape[^1];
        int kb = transB ? b._shape[^1] : b._shape[^2], n = transB ? b._shape[^2] : b._shape[^1];
        bool sharedB = b.Rank == 2 && a.Rank > 2;
        bool batchMatches = a.Rank == b.Rank && a._shape.AsSpan(0, a.Rank - 2).SequenceEqual(b._shape.AsSpan(0, b.Rank - 2));
        if (ka != kb || !(sharedB || batchMatches))
            throw new ArgumentException($"{op}: shapes {ShapeString(a._shape)}{(transA ? "ᵀ" : "")} and {ShapeString(b._shape)}{(transB ? "ᵀ" : "")} are not compatible");

        if (sharedB && transA) throw new NotSupportedException($"{op}: a transposed batched left operand with a shared 2-D right operand");
        int batch = Layout.Product(a._shape, 0, a.Rank - 2);
        var shape = a._shape.Take(a.Rank - 2).Append(m).Append(n).ToArray();
        var y = new Tensor(a.Device, shape, DType.Float32);
        int lda = a._shape[^1], ldb = b._shape[^1];
        if (sharedB && !transA)
        {
            // rows of all batches stacked: one (batch·M, K) @ (K, N) product
            a.Backend.Gemm(new GemmArgs(false, transB, batch * m, n, ka, 1f, a.View, lda, 0, b.View, ldb, 0, 0f, y.View, n, 0, Accumulation: Precision.Gemm));
        }
        else
        {
            int strideB = sharedB ? 0 : b._shape[^1] * b._shape[^2];
            a.Backend.Gemm(new GemmArgs(transA, transB, m, n, ka, 1f, a.View, lda, a._shape[^1] * a._shape[^2], b.View, ldb, strideB, 0f, y.View, n, m * n, batch, Precision.Gemm));
        }

        return Record(y, op, [a, b], g =>
        {
            // y = op(A)·op(B):  d op(A) = g·op(B)ᵀ,  d op(B) = op(A)ᵀ·g; transposes fold into the GEMM flags.
            Tensor? da = null, db = null;
            if (a.RequiresGrad)
                da = transA ? MatmulCore(b, g, transB, true, op) : MatmulCore(g, b, false, !transB, op);
            if (b.RequiresGrad)
            {
                if (sharedB)
                {
                    var a2 = a.ViewAs([batch * a._shape[^2], a._shape[^1]]);
                    var g2 = g.ViewAs([batch * m, n]);
                    db = transB ? MatmulCore(g2, a2, true, transA, op) : MatmulCore(a2, g2, !transA, false, op);
                }
                else db = transB ? MatmulCore(g, a, true, transA, op) : MatmulCore(a, g, !transA, false, op);
            }
            return [da, db];
        });
    }
}
