namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>What a device reports about itself (the <c>devices</c> listing). <see cref="Float64"/>: whether its kernels can
/// compute in double (llvmpipe and Intel Arc cannot: there matrix products accumulate only in float32).</summary>
public sealed record DeviceInfo(string Name, string Description, long MemoryBytes, int ComputeUnits, bool Float64 = true);

/// <summary>One operand of a <see cref="GemmArgs"/>: a row-major matrix at <see cref="View"/> whose rows lie
/// <see cref="Ld"/> elements apart (element [r, c] at r·Ld + c), used as its transpose when <see cref="Transposed"/>.
/// Batch entry i starts i·<see cref="BatchStride"/> elements further on; a stride of 0 shares one matrix.</summary>
public readonly record struct GemmOperand(BufferView View, int Ld, bool Transposed = false, int BatchStride = 0)
{
    /// <summary>The row-major matrix at <paramref name="view"/> with rows <paramref name="ld"/> elements apart.</summary>
    public static GemmOperand Matrix(BufferView view, int ld) => new(view, ld);

    /// <summary>This matrix once per batch entry, <paramref name="stride"/> elements apart.</summary>
    public GemmOperand Batched(int stride) => this with { BatchStride = stride };
}

/// <summary>Row-major batched GEMM: for each batch index i &lt; <see cref="Batch"/>,
/// C_i = Alpha · op(A_i) · op(B_i) + Beta · C_i, with op(A) of shape (M, K), op(B) of shape (K, N), C of (M, N)
/// (see <see cref="GemmOperand"/> for where the elements lie; C is never transposed). Beta = 0 overwrites C without
/// reading it (NaNs in C do not propagate). Alpha = 1, Beta = 0 and Batch = 1 unless set; <see cref="Accumulation"/>
/// is the calling thread's <see cref="Precision.Gemm"/> unless set.</summary>
public readonly record struct GemmArgs(int M, int N, int K, GemmOperand A, GemmOperand B, GemmOperand C)
{
    private readonly GemmOperand _c = Output(C);

    public GemmOperand C { get => _c; init => _c = Output(value); }
    public float Alpha { get; init; } = 1f;
    public float Beta { get; init; }
    public int Batch { get; init; } = 1;
    public GemmAccumulation Accumulation { get; init; } = Precision.Gemm;

    private static GemmOperand Output(GemmOperand c) =>
        c.Transposed ? throw new ArgumentException("a GEMM writes C row-major; it cannot be transposed", nameof(C)) : c;
}

/// <summary>How a GEMM sums its K products. <see cref="Float32"/> is the fast default (float32 accumulators,
/// like PyTorch's float32 matmul). <see cref="Float64"/> sums the exact products in double and rounds once,
/// for comparisons with float64 references: where a gradient sum cancels almost completely, float32
/// accumulation round-off alone can exceed a 1e-4 relative tolerance. It is several times slower.</summary>
public enum GemmAccumulation { Float32, Float64 }

/// <summary>Geometry of a 2-D convolution over a batch of NCHW images: kernel (KH, KW), stride,
/// top/left padding (PadH, PadW; the bottom/right padding is implied by OutH/OutW, so asymmetric
/// padding works) and dilation 1. The column matrix has rows C·KH·KW (c-major, then kh, kw) and
/// columns OutH·OutW per image; per image (Batch, rows, cols) by default, or with
/// <see cref="BatchInner"/> one (rows, Batch·cols) matrix, so a whole batch is one GEMM.</summary>
public readonly record struct ConvGeometry(
    int Batch, int Channels, int Height, int Width,
    int KH, int KW, int StrideH, int StrideW, int PadH, int PadW, int OutH, int OutW)
{
    private readonly int _batchInner, _accumulate; // ints, not bools: kernel arguments must be blittable

    public bool BatchInner { get => _batchInner != 0; init => _batchInner = value ? 1 : 0; }
    /// <summary>Col2Im adds into the images instead of overwriting them (a band of output rows at a time).</summary>
    public bool Accumulate { get => _accumulate != 0; init => _accumulate = value ? 1 : 0; }

    public int ColumnRows => Channels * KH * KW;
    public int ColumnCols => OutH * OutW;
    public int ColumnsPerImage => ColumnRows * ColumnCols;
    /// <summary>Distance between the first columns of consecutive images.</summary>
    public int ImageStride => BatchInner ? ColumnCols : ColumnsPerImage;
    /// <summary>Distance between consecutive rows of the column matrix.</summary>
    public int RowStride => BatchInner ? Batch * ColumnCols : ColumnCols;
}

/// <summary>
/// The primitives an executor runs on raw device buffers. No autograd, no shapes beyond what each
/// call needs: the tensor layer (Ops/) checks shapes and composes these. All buffers hold 4-byte
/// elements; int32 data (indices) is passed in the same buffers. Calls may run asynchronously;
/// <see cref="Download"/> and <see cref="Synchronize"/> wait for queued work.
/// </summary>
public interface IBackend : IDisposable
{
    DeviceInfo Info { get; }

    // ---- memory ----
    /// <summary>New uninitialised buffer of <paramref name="length"/> elements (the caching allocator calls this on a miss).</summary>
    DeviceBuffer Allocate(int length);
    void Upload(ReadOnlySpan<float> source, BufferView destination);
    void Download(BufferView source, Span<float> destination);
    void Synchronize();
    void Fill(BufferView destination, int count, float value);

    /// <summary>dst[i·dstStrides] = src[i·srcStrides] for every multi-index i of <paramref name="shape"/>
    /// (rank ≤ 6). Covers contiguous copy, permute, slice, concat and broadcast expansion.</summary>
    void StridedCopy(BufferView source, Dim6 sourceStrides, BufferView destination, Dim6 destinationStrides, Dim6 shape, int rank);

    // ---- elementwise ----
    /// <summary>y[i] = op(x[i]; a, b), i &lt; n. x and y may be the same view.</summary>
    void Unary<TOp>(BufferView x, BufferView y, int n, float a, float b) where TOp : struct, IUnaryOp;

    /// <summary>dx[i] = dy[i] · op'(x[i], y[i]; a, b).</summary>
    void UnaryBackward<TOp>(BufferView x, BufferView y, BufferView dy, BufferView dx, int n, float a, float b) where TOp : struct, IUnaryOp;

    /// <summary>y (contiguous, of <paramref name="shape"/>) = op(a, b) with a and b read through strides
    /// (a stride of 0 broadcasts). Rank ≤ 6.</summary>
    void Binary<TOp>(BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides, BufferView y, Dim6 shape, int rank)
        where TOp : struct, IBinaryOp;

    /// <summary>y (contiguous, of <paramref name="shape"/>) = condition ≠ 0 ? a : b (torch.where; a NaN condition
    /// selects a), all three read through strides as in <see cref="Binary{TOp}"/>. 1 ≤ rank ≤ 6. y may be the
    /// same view as a contiguous operand.</summary>
    void Where(BufferView condition, Dim6 conditionStrides, BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides,
        BufferView y, Dim6 shape, int rank);

    // ---- reductions, viewing x as (outer, r, inner) ----
    /// <summary>y[o, i] = reduce over j of x[o, j, i].</summary>
    void Reduce<TOp>(BufferView x, BufferView y, int outer, int r, int inner) where TOp : struct, IReduceOp;

    /// <summary>indices[o, i] (int32) = argmax (or argmin) over j of x[o, j, i]; ties take the first index.</summary>
    void ArgReduce(BufferView x, BufferView indices, int outer, int r, int inner, bool min);

    // ---- linear algebra ----
    void Gemm(in GemmArgs args);

    /// <summary>Softmax over the last dimension of x viewed as (rows, cols).</summary>
    void Softmax(BufferView x, BufferView y, int rows, int cols);

    /// <summary>dx = y ⊙ (dy − Σ_cols dy ⊙ y), rows of length cols.</summary>
    void SoftmaxBackward(BufferView y, BufferView dy, BufferView dx, int rows, int cols);

    // ---- group normalisation over x viewed as (batch, channels, spatial) ----
    /// <summary>Per (sample, group of channels/groups channels): mean and rstd = 1/sqrt(biased var + eps),
    /// written to <paramref name="mean"/> and <paramref name="rstd"/> (batch·groups); y = (x − mean)·rstd·γ[c] + β[c].</summary>
    void GroupNormForward(BufferView x, BufferView gamma, BufferView beta, BufferView y, BufferView mean, BufferView rstd,
        int batch, int channels, int spatial, int groups, float eps);

    /// <summary>Gradients of <see cref="GroupNormForward"/>: dx (overwritten) and dγ, dβ (channels; overwritten
    /// with sums over batch and spatial positions), from the saved mean and rstd.</summary>
    void GroupNormBackward(BufferView x, BufferView gamma, BufferView mean, BufferView rstd, BufferView dy,
        BufferView dx, BufferView dgamma, BufferView dbeta, int batch, int channels, int spatial, int groups);

    // ---- fused attention over bh problems in contiguous buffers q, o, dO (bh, lq, d) and k, v (bh, lk, d) ----
    /// <summary>Head dims up to this size are served by the fused primitives of every executor that prefers them.</summary>
    const int MaxFusedAttentionHeadDim = 128;

    /// <summary>Whether attention ops should call <see cref="AttentionForward"/> and <see cref="AttentionBackward"/>
    /// (for d ≤ <see cref="MaxFusedAttentionHeadDim"/>) rather than compose GEMMs and a softmax. The fused
    /// path never holds the whole (bh, lq, lk) score matrix, nor keeps it for the backward pass.</summary>
    bool PrefersFusedAttention { get; }

    /// <summary>o_i = Σ_j softmax_j(scale·q_i·k_j)·v_j for every row i of every problem, and
    /// logSumExp (bh, lq) = log Σ_j exp(scale·q_i·k_j), which <see cref="AttentionBackward"/> uses to recompute
    /// the probabilities. Needs lq, lk ≥ 1; o and logSumExp are overwritten.</summary>
    void AttentionForward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView logSumExp,
        int bh, int lq, int lk, int d, float scale);

    /// <summary>Gradients of <see cref="AttentionForward"/> given dO (bh, lq, d), its output o and logSumExp:
    /// with P_ij = exp(scale·q_i·k_j − logSumExp_i), D_i = dO_i·o_i and dS_ij = P_ij (dO_i·v_j − D_i):
    /// dq_i = scale Σ_j dS_ij k_j, dk_j = scale Σ_i dS_ij q_i, dv_j = Σ_i P_ij dO_i. dq, dk, dv are overwritten.</summary>
    void AttentionBackward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView dO, BufferView logSumExp,
        BufferView dq, BufferView dk, BufferView dv, int bh, int lq, int lk, int d, float scale);

    // ---- indexing, viewing x as (outer, n, inner) ----
    /// <summary>y[o, j, i] = x[o, idx[j], i] for j &lt; k (idx holds int32). GPU executors write NaN for an
    /// index outside [0, n) and <see cref="IndexAdd"/> skips it; the cpu executor's callers check first.</summary>
    void IndexSelect(BufferView x, BufferView idx, BufferView y, int outer, int n, int k, int inner);

    /// <summary>dx[o, idx[j], i] += dy[o, j, i] for j &lt; k (repeated indices accumulate).</summary>
    void IndexAdd(BufferView dy, BufferView idx, BufferView dx, int outer, int n, int k, int inner);

    // ---- convolution lowering ----
    /// <summary>cols (Batch, ColumnRows, ColumnCols) from images x (Batch, C, H, W); padding reads 0.</summary>
    void Im2Col(BufferView x, BufferView cols, in ConvGeometry g);

    /// <summary>dx (Batch, C, H, W) = sum of column entries that read each pixel (overwrites dx).</summary>
    void Col2Im(BufferView cols, BufferView dx, in ConvGeometry g);

    /// <summary>Whether <see cref="ConvGemm"/> is served: the executor gathers a convolution's patches straight into
    /// its product's packed panels. Where false, convolutions build column matrices with <see cref="Im2Col"/>.</summary>
    bool GathersConvPatches { get; }

    /// <summary>A product with the column matrix P (C·KH·KW, Batch·OH·OW; image-major columns) of x (Batch, C, H, W), in
    /// float32, without holding P: c (m, Batch·OH·OW) = a (m, C·KH·KW) · P (a convolution), or with
    /// <paramref name="transposed"/> c (m, C·KH·KW) = a (m, Batch·OH·OW) · Pᵀ (its weight gradient). All row-major and
    /// contiguous; c is overwritten. Only where <see cref="GathersConvPatches"/>.</summary>
    void ConvGemm(BufferView a, BufferView x, BufferView c, int m, in ConvGeometry g, bool transposed);

    // ---- optimiser and random numbers ----
    /// <summary>One PyTorch Adam update over n elements: g += weightDecay·p; m = β1 m + (1−β1) g;
    /// v = β2 v + (1−β2) g²; p −= stepSize · m / (sqrt(v) / sqrtBiasCorrection2 + eps), where
    /// stepSize = lr / (1 − β1^t) and sqrtBiasCorrection2 = sqrt(1 − β2^t) are computed by the caller.</summary>
    void AdamStep(BufferView p, BufferView g, BufferView m, BufferView v, int n,
        float beta1, float beta2, float eps, float weightDecay, float stepSize, float sqrtBiasCorrection2);

    /// <summary>y[i] = uniform [0, 1) (normal = false) or standard normal (normal = true) from
    /// <see cref="Philox"/> with the given key, at counter (counterBase + i): identical on every executor.</summary>
    void FillRandom(BufferView y, int n, ulong seed, ulong counterBase, bool normal);
}
