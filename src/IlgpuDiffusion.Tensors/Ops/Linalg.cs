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
            throw new ArgumentException(
                $"{op}: both operands need at least 2 dimensions, got {ShapeString(a._shape)} and {ShapeString(b._shape)}");
        int m = transA ? a._shape[^1] : a._shape[^2], ka = transA ? a._shape[^2] : a._shape[^1];
        int kb = transB ? b._shape[^1] : b._shape[^2], n = transB ? b._shape[^2] : b._shape[^1];
        bool sharedB = b.Rank == 2 && a.Rank > 2;
        bool batchMatches = a.Rank == b.Rank && a._shape.AsSpan(0, a.Rank - 2).SequenceEqual(b._shape.AsSpan(0, b.Rank - 2));
        if (ka != kb || !(sharedB || batchMatches))
            throw new ArgumentException($"{op}: shapes {ShapeString(a._shape)}{(transA ? "ᵀ" : "")} and "
                + $"{ShapeString(b._shape)}{(transB ? "ᵀ" : "")} are not compatible");

        if (sharedB && transA) throw new NotSupportedException($"{op}: a transposed batched left operand with a shared 2-D right operand");
        int batch = Layout.Product(a._shape, 0, a.Rank - 2);
        var shape = a._shape.Take(a.Rank - 2).Append(m).Append(n).ToArray();
        var y = new Tensor(a.Device, shape, DType.Float32);
        var c = GemmOperand.Matrix(y.View, n);
        if (sharedB && !transA)
        {
            // rows of all batches stacked: one (batch·M, K) @ (K, N) product
            a.Backend.Gemm(new GemmArgs(batch * m, n, ka, Operand(a, transposed: false), Operand(b, transB), c));
        }
        else
        {
            a.Backend.Gemm(new GemmArgs(m, n, ka, Operand(a, transA), Operand(b, transB), c.Batched(m * n)) { Batch = batch });
        }

        // dA reads B and dB reads A
        Tensor[] saved = [.. SavedIf(a.RequiresGrad, b), .. SavedIf(b.RequiresGrad, a)];
        return Record(y, op, [a, b], saved, g =>
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

    /// <summary>The last two dimensions of <paramref name="t"/> as a GEMM operand, one per batch entry of the
    /// leading dimensions (a 2-D tensor is shared by all).</summary>
    private static GemmOperand Operand(Tensor t, bool transposed) =>
        new(t.View, t._shape[^1], transposed, BatchStride: t.Rank > 2 ? t._shape[^2] * t._shape[^1] : 0);
}
