using ILGPU;
using ILGPU.Runtime;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>Sizes of one fused attention call (see <see cref="IBackend.AttentionForward"/>) as a kernel parameter.</summary>
internal struct AttentionParams
{
    public int Lq, Lk, D;
    public float Scale;
}

/// <summary>Compile-time rows per group of the attention kernels (threads: rows · <see cref="IlgpuAttentionKernels.RowLanes"/>).
/// ILGPU specialises the kernels per implementing struct, so the values are constants in the compiled code.</summary>
internal interface IAttentionTile
{
    /// <summary>Query rows per forward group.</summary>
    int ForwardRows { get; }

    /// <summary>Key rows (dk, dv) or query rows (dq) per backward group.</summary>
    int BackwardRows { get; }
}

/// <summary>GPUs: 256-thread forward groups, 128-thread backward groups.</summary>
internal struct GpuAttentionTile : IAttentionTile
{
    public readonly int ForwardRows => 32;
    public readonly int BackwardRows => 16;
}

/// <summary>ILGPU's CPU accelerator, where a barrier costs about 8 µs per thread of the group: one row, 8 threads.</summary>
internal struct CpuAttentionTile : IAttentionTile
{
    public readonly int ForwardRows => 1;
    public readonly int BackwardRows => 1;
}

/// <summary>
/// Fused attention (the FlashAttention-2 scheme) over contiguous (bh, l, d) buffers, d ≤ <see cref="MaxHeadDim"/>.
/// A group owns a tile of rows of one problem (rows per group: <see cref="IAttentionTile"/>) and streams 16-row
/// tiles of the other operand through shared memory, so no lq × lk matrix ever exists in device memory. Each row
/// is served by <see cref="RowLanes"/> consecutive threads: lane ℓ owns head-dim elements ℓ + 8e (two <see cref="Vec8"/>
/// accumulators, the second used only when d &gt; 64) and columns ℓ and ℓ + 8 of the 16-wide score tile. Row maxima
/// and sums go through shared memory rather than warp shuffles, which OpenCL devices need not support.
/// Shared tiles have row stride <see cref="MaxHeadDim"/> + 1, so the lanes of a row, reading different rows at
/// the same d, hit different banks. Shared memory per group with <see cref="GpuAttentionTile"/>: forward 36.5 KiB, backward at
/// most 34.5 KiB (ILGPU's cap is 48 KiB).
/// </summary>
internal static class IlgpuAttentionKernels
{
    public const int MaxHeadDim = IBackend.MaxFusedAttentionHeadDim;
    public const int RowLanes = 8;
    /// <summary>Width of a score tile: keys per streamed tile (forward, dq) or queries per streamed tile (dk, dv).</summary>
    public const int Columns = 2 * RowLanes;
    private const int Stride = MaxHeadDim + 1, ScoreStride = Columns + 1, HalfDim = MaxHeadDim / 2;

    /// <summary>The most threads a group of either kernel has.</summary>
    public static int MaxGroupSize<TTile>() where TTile : struct, IAttentionTile =>
        Math.Max(default(TTile).ForwardRows, default(TTile).BackwardRows) * RowLanes;

    public static KernelConfig ForwardConfig<TTile>(int bh, int lq) where TTile : struct, IAttentionTile =>
        new(bh * Tiles(lq, default(TTile).ForwardRows), default(TTile).ForwardRows * RowLanes);

    /// <summary>For both backward kernels: <paramref name="length"/> is lk (dk, dv) or lq (dq).</summary>
    public static KernelConfig BackwardConfig<TTile>(int bh, int length) where TTile : struct, IAttentionTile =>
        new(bh * Tiles(length, default(TTile).BackwardRows), default(TTile).BackwardRows * RowLanes);

    private static int Tiles(int length, int rows) => (length + rows - 1) / rows;

    // ---- forward: online softmax over key tiles ----

    /// <summary>One group per (problem, ForwardRows query rows). Per key tile: scores, the new running row maximum,
    /// then o ← o·exp(oldMax − newMax) + Σ_j p_j v_j and the running sum likewise; o / sum at the end.</summary>
    public static void Forward<TTile>(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> logSumExp, AttentionParams p) where TTile : struct, IAttentionTile
    {
        int forwardRows = default(TTile).ForwardRows;
        var qTile = SharedMemory.Allocate<float>(forwardRows * Stride);
        var kTile = SharedMemory.Allocate<float>(Columns * Stride);
        var vTile = SharedMemory.Allocate<float>(Columns * Stride);
        var scores = SharedMemory.Allocate<float>(forwardRows * ScoreStride);
        var probabilities = SharedMemory.Allocate<float>(forwardRows * ScoreStride);
        int row = Group.IdxX / RowLanes, lane = Group.IdxX % RowLanes;
        int tiles = Tiles(p.Lq, forwardRows), bh = Grid.IdxX / tiles, q0 = (Grid.IdxX - bh * tiles) * forwardRows;
        int qBase = bh * p.Lq * p.D, kvBase = bh * p.Lk * p.D, scoreRow = row * ScoreStride;

        LoadTile(q, qBase + q0 * p.D, p.Lq - q0, forwardRows, p.D, qTile);
        float max = float.NegativeInfinity, sum = 0f;
        Vec8 low = default, high = default;
        for (int k0 = 0; k0 < p.Lk; k0 += Columns)
        {
            Group.Barrier(); // every thread is done with the previous K, V and probabilities
            LoadTile(k, kvBase + k0 * p.D, p.Lk - k0, Columns, p.D, kTile);
            LoadTile(v, kvBase + k0 * p.D, p.Lk - k0, Columns, p.D, vTile);
            Group.Barrier();
            int keys = Math.Min(Columns, p.Lk - k0);
            // Keys past the end score −∞, probability 0.
            for (int c = lane; c < Columns; c += RowLanes)
                scores[scoreRow + c] = c < keys ? p.Scale * Dot(qTile, row, kTile, c, p.D) : float.NegativeInfinity;
            Group.Barrier();
            float newMax = max;
            for (int j = 0; j < keys; j++) newMax = MathF.Max(newMax, scores[scoreRow + j]);
            for (int c = lane; c < Columns; c += RowLanes)
                probabilities[scoreRow + c] = MathF.Exp(scores[scoreRow + c] - newMax);
            float rescale = MathF.Exp(max - newMax); // 0 on the first tile (max = −∞)
            max = newMax;
            Group.Barrier();
            low.Scale(rescale);
            high.Scale(rescale);
            sum *= rescale;
            for (int j = 0; j < keys; j++)
            {
                float pj = probabilities[scoreRow + j];
                sum += pj;
                low.MultiplyAdd(pj, Vec8.Load(vTile, j * Stride + lane, RowLanes));
                if (p.D > HalfDim) high.MultiplyAdd(pj, Vec8.Load(vTile, j * Stride + HalfDim + lane, RowLanes));
            }
        }

        int i = q0 + row;
        if (i >= p.Lq) return;
        StoreRow(o, qBase + i * p.D, lane, p.D, low, high, 1f / sum);
        if (lane == 0) logSumExp[bh * p.Lq + i] = max + MathF.Log(sum);
    }

    // ---- backward: probabilities recomputed from logSumExp; one kernel for dk and dv, one for dq ----

    /// <summary>One group per (problem, BackwardRows keys), streaming 16-query tiles: dv_j += Σ_i P_ij dO_i and
    /// dk_j += scale Σ_i dS_ij q_i. Rows of threads are keys; score columns are queries.</summary>
    public static void BackwardKeys<TTile>(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> dO, ArrayView<float> logSumExp, ArrayView<float> dk, ArrayView<float> dv, AttentionParams p)
        where TTile : struct, IAttentionTile
    {
        // The prologue repeats Forward's and BackwardQueries' on purpose: shared memory is declared in each kernel.
        int backwardRows = default(TTile).BackwardRows;
        var kTile = SharedMemory.Allocate<float>(backwardRows * Stride);
        var vTile = SharedMemory.Allocate<float>(backwardRows * Stride);
        var qTile = SharedMemory.Allocate<float>(Columns * Stride);
        var dOTile = SharedMemory.Allocate<float>(Columns * Stride);
        var probabilities = SharedMemory.Allocate<float>(backwardRows * ScoreStride);
        var scoreGrads = SharedMemory.Allocate<float>(backwardRows * ScoreStride);
        var queryLogSumExp = SharedMemory.Allocate<float>(Columns);
        var queryDelta = SharedMemory.Allocate<float>(Columns);
        int row = Group.IdxX / RowLanes, lane = Group.IdxX % RowLanes;
        int tiles = Tiles(p.Lk, backwardRows), bh = Grid.IdxX / tiles, k0 = (Grid.IdxX - bh * tiles) * backwardRows;
        int qBase = bh * p.Lq * p.D, kvBase = bh * p.Lk * p.D, scoreRow = row * ScoreStride;

        LoadTile(k, kvBase + k0 * p.D, p.Lk - k0, backwardRows, p.D, kTile);
        LoadTile(v, kvBase + k0 * p.D, p.Lk - k0, backwardRows, p.D, vTile);
        Vec8 dkLow = default, dkHigh = default, dvLow = default, dvHigh = default;
        for (int q0 = 0; q0 < p.Lq; q0 += Columns)
        {
            Group.Barrier(); // every thread is done with the previous query tile
            int queries = Math.Min(Columns, p.Lq - q0);
            LoadTile(q, qBase + q0 * p.D, queries, Columns, p.D, qTile);
            LoadTile(dO, qBase + q0 * p.D, queries, Columns, p.D, dOTile);
            // Row statistics of the query tile, one thread per query; queries past the end get finite
            // values, as their dS must come out 0.
            for (int c = Group.IdxX; c < Columns; c += Group.DimX)
            {
                bool inside = c < queries;
                queryLogSumExp[c] = inside ? logSumExp[bh * p.Lq + q0 + c] : 0f;
                queryDelta[c] = inside ? GlobalDot(dO, o, qBase + (q0 + c) * p.D, p.D) : 0f;
            }
            Group.Barrier();
            for (int c = lane; c < Columns; c += RowLanes)
            {
                scoreGrads[scoreRow + c] = ScoreGradient(qTile, dOTile, c, kTile, vTile, row, c < queries,
                    queryLogSumExp[c], queryDelta[c], p, out float probability);
                probabilities[scoreRow + c] = probability;
            }
            Group.Barrier();
            for (int c = 0; c < queries; c++)
            {
                float pc = probabilities[scoreRow + c], dsc = scoreGrads[scoreRow + c];
                dvLow.MultiplyAdd(pc, Vec8.Load(dOTile, c * Stride + lane, RowLanes));
                dkLow.MultiplyAdd(dsc, Vec8.Load(qTile, c * Stride + lane, RowLanes));
                if (p.D > HalfDim)
                {
                    dvHigh.MultiplyAdd(pc, Vec8.Load(dOTile, c * Stride + HalfDim + lane, RowLanes));
                    dkHigh.MultiplyAdd(dsc, Vec8.Load(qTile, c * Stride + HalfDim + lane, RowLanes));
                }
            }
        }

        int j = k0 + row;
        if (j >= p.Lk) return;
        StoreRow(dk, kvBase + j * p.D, lane, p.D, dkLow, dkHigh, p.Scale);
        StoreRow(dv, kvBase + j * p.D, lane, p.D, dvLow, dvHigh, 1f);
    }

    /// <summary>One group per (problem, BackwardRows queries), streaming 16-key tiles: dq_i = scale Σ_j dS_ij k_j.</summary>
    public static void BackwardQueries<TTile>(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> dO, ArrayView<float> logSumExp, ArrayView<float> dq, AttentionParams p) where TTile : struct, IAttentionTile
    {
        // The prologue repeats Forward's and BackwardKeys' on purpose: shared memory is declared in each kernel.
        int backwardRows = default(TTile).BackwardRows;
        var qTile = SharedMemory.Allocate<float>(backwardRows * Stride);
        var dOTile = SharedMemory.Allocate<float>(backwardRows * Stride);
        var kTile = SharedMemory.Allocate<float>(Columns * Stride);
        var vTile = SharedMemory.Allocate<float>(Columns * Stride);
        var scoreGrads = SharedMemory.Allocate<float>(backwardRows * ScoreStride);
        int row = Group.IdxX / RowLanes, lane = Group.IdxX % RowLanes;
        int tiles = Tiles(p.Lq, backwardRows), bh = Grid.IdxX / tiles, q0 = (Grid.IdxX - bh * tiles) * backwardRows;
        int qBase = bh * p.Lq * p.D, kvBase = bh * p.Lk * p.D, scoreRow = row * ScoreStride;

        int i = q0 + row;
        LoadTile(q, qBase + q0 * p.D, p.Lq - q0, backwardRows, p.D, qTile);
        LoadTile(dO, qBase + q0 * p.D, p.Lq - q0, backwardRows, p.D, dOTile);
        // Rows past the end keep zero q and dO, hence zero dS; their statistics only need to be finite.
        float rowLogSumExp = i < p.Lq ? logSumExp[bh * p.Lq + i] : 0f;
        float rowDelta = i < p.Lq ? GlobalDot(dO, o, qBase + i * p.D, p.D) : 0f;
        Vec8 low = default, high = default;
        for (int k0 = 0; k0 < p.Lk; k0 += Columns)
        {
            Group.Barrier(); // every thread is done with the previous K and V
            int keys = Math.Min(Columns, p.Lk - k0);
            LoadTile(k, kvBase + k0 * p.D, keys, Columns, p.D, kTile);
            LoadTile(v, kvBase + k0 * p.D, keys, Columns, p.D, vTile);
            Group.Barrier();
            for (int c = lane; c < Columns; c += RowLanes)
                scoreGrads[scoreRow + c] = ScoreGradient(qTile, dOTile, row, kTile, vTile, c, c < keys, rowLogSumExp, rowDelta, p, out _);
            Group.Barrier();
            for (int c = 0; c < keys; c++)
            {
                float dsc = scoreGrads[scoreRow + c];
                low.MultiplyAdd(dsc, Vec8.Load(kTile, c * Stride + lane, RowLanes));
                if (p.D > HalfDim) high.MultiplyAdd(dsc, Vec8.Load(kTile, c * Stride + HalfDim + lane, RowLanes));
            }
        }

        if (i >= p.Lq) return;
        StoreRow(dq, qBase + i * p.D, lane, p.D, low, high, p.Scale);
    }

    /// <summary>dS = P (dO·v − delta) with P = exp(scale·q·k − logSumExp), for query row <paramref name="qRow"/> of
    /// the q and dO tiles and key row <paramref name="kRow"/> of the k and v tiles; both 0 for a pair past the end.</summary>
    private static float ScoreGradient(ArrayView<float> qTile, ArrayView<float> dOTile, int qRow, ArrayView<float> kTile,
        ArrayView<float> vTile, int kRow, bool inside, float rowLogSumExp, float rowDelta, AttentionParams p, out float probability)
    {
        probability = inside ? MathF.Exp(p.Scale * Dot(qTile, qRow, kTile, kRow, p.D) - rowLogSumExp) : 0f;
        return probability * (Dot(dOTile, qRow, vTile, kRow, p.D) - rowDelta);
    }

    // ---- helpers ----

    /// <summary>Rows [0, rows) of a tile from contiguous rows of length d at <paramref name="offset"/>; rows from
    /// <paramref name="validRows"/> on read as 0. Consecutive threads read consecutive elements (coalesced).
    /// Columns d.. of the tile are left unset: accumulators of those columns are never stored.</summary>
    private static void LoadTile(ArrayView<float> source, int offset, int validRows, int rows, int d, ArrayView<float> tile)
    {
        for (int f = Group.IdxX; f < rows * d; f += Group.DimX)
        {
            int r = f / d;
            tile[r * Stride + f - r * d] = r < validRows ? source[offset + f] : 0f;
        }
    }

    /// <summary>Dot product of row <paramref name="aRow"/> of tile a and row <paramref name="bRow"/> of tile b over d.</summary>
    private static float Dot(ArrayView<float> a, int aRow, ArrayView<float> b, int bRow, int d)
    {
        int aOffset = aRow * Stride, bOffset = bRow * Stride;
        float sum = 0f;
        for (int c = 0; c < d; c++) sum += a[aOffset + c] * b[bOffset + c];
        return sum;
    }

    /// <summary>Σ_c a[offset + c]·b[offset + c] for c &lt; d, read from global memory.</summary>
    private static float GlobalDot(ArrayView<float> a, ArrayView<float> b, int offset, int d)
    {
        float sum = 0f;
        for (int c = 0; c < d; c++) sum += a[offset + c] * b[offset + c];
        return sum;
    }

    /// <summary>y[offset + c] = factor · accumulator for this lane's columns c = lane + 8e &lt; d (low: c &lt; 64).</summary>
    private static void StoreRow(ArrayView<float> y, int offset, int lane, int d, Vec8 low, Vec8 high, float factor)
    {
        for (int e = 0; e < 8; e++)
        {
            int c = lane + e * RowLanes;
            if (c < d) y[offset + c] = factor * low[e];
            if (c + HalfDim < d) y[offset + c + HalfDim] = factor * high[e];
        }
    }
}
