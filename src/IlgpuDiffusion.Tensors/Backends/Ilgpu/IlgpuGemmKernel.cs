using ILGPU;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary><see cref="GemmArgs"/> without the buffers, as a kernel parameter (flags as ints). A split-K
/// launch divides K into <see cref="Splits"/> ranges of <see cref="KChunk"/>; group z = batch · Splits + split
/// computes one range and writes C at z · StrideC.</summary>
internal struct GemmParams
{
    public int TransA, TransB, M, N, K, Lda, StrideA, Ldb, StrideB, Ldc, StrideC, Splits, KChunk;
    public float Alpha, Beta;
}

/// <summary>How <see cref="IlgpuGemmKernel.SumSplits{TSum}"/> adds the (at most 64) partial products of a C element.</summary>
internal interface ISplitSum
{
    void Add(float value);

    /// <summary>α · the sum, rounded once to float.</summary>
    float Scaled(float alpha);
}

/// <summary>In float with Neumaier's compensation (the rounding error of each addition kept in a second float), for
/// devices without float64 (llvmpipe, Intel Arc): a few partials cancelling each other lose no more than in double.</summary>
internal struct CompensatedSplitSum : ISplitSum
{
    private float sum, compensation;

    public void Add(float value)
    {
        float total = sum + value;
        compensation += Math.Abs(sum) >= Math.Abs(value) ? sum - total + value : value - total + sum;
        sum = total;
    }

    public readonly float Scaled(float alpha) => alpha * (sum + compensation);
}

/// <summary>How <see cref="IlgpuGemmKernel.GemmFloat64{TSum}"/> adds the products of a C element: each exact, the sum
/// rounded once to float (<see cref="GemmAccumulation.Float64"/>).</summary>
internal interface IProductSum
{
    /// <summary>Adds a · b, exactly or with an error far below float's.</summary>
    void AddProduct(float a, float b);

    /// <summary>α · the sum, rounded once to float.</summary>
    float Scaled(float alpha);
}

/// <summary>In double, where the device has float64 (split-K partials and GEMM products alike: a float product is exact
/// in double).</summary>
internal struct DoubleSum : ISplitSum, IProductSum
{
    private double sum;

    public void Add(float value) => sum += value;

    public void AddProduct(float a, float b) => sum += (double)a * b;

    public readonly float Scaled(float alpha) => (float)(alpha * sum);
}

/// <summary>
/// Float-float (double-single: an unevaluated sum hi + lo, about 48 significand bits) for devices without float64
/// (llvmpipe, Intel Arc). ILGPU 1.5.3 exposes no fused multiply-add to kernels (no intrinsic maps to its
/// MultiplyAdd, which only its PTX index arithmetic emits), so a product is made exact without one: each factor is
/// cut by its bits into a high half (the top 12 of 24 significand bits) and the rest, and the four half products,
/// 24 bits at most, are exact in float. Each is added with Knuth's TwoSum and the pair renormalised (Fast2Sum), so
/// no addition loses what float cannot hold. Every product being exact, a compiler contracting a multiply and an
/// add into an FMA (OpenCL C allows it by default) rounds exactly as the separate add. Half products under float's
/// normal range (factors near 1e-19) may flush to zero; C's elements are not affected at float's precision.
/// </summary>
internal struct FloatFloatProductSum : IProductSum
{
    private float hi, lo;

    public void AddProduct(float a, float b)
    {
        float aHigh = High(a), aLow = a - aHigh, bHigh = High(b), bLow = b - bHigh;
        Add(aHigh * bHigh);
        Add(aHigh * bLow);
        Add(aLow * bHigh);
        Add(aLow * bLow);
    }

    /// <summary>The top 12 significand bits of <paramref name="value"/> (the low 12 cut off); value − High is exact.</summary>
    private static float High(float value) => Interop.IntAsFloat(Interop.FloatAsInt(value) & 0xFFFFF000u);

    /// <summary>(hi, lo) += value: TwoSum gives hi + value = sum + error exactly; Fast2Sum folds lo in.</summary>
    private void Add(float value)
    {
        float sum = hi + value, virtualValue = sum - hi;
        float error = (hi - (sum - virtualValue)) + (value - virtualValue) + lo;
        hi = sum + error;
        lo = error - (hi - sum);
    }

    /// <summary>α · (hi + lo) as float-float products of its own, then rounded once.</summary>
    public readonly float Scaled(float alpha)
    {
        var scaled = default(FloatFloatProductSum);
        scaled.AddProduct(alpha, hi);
        scaled.AddProduct(alpha, lo);
        return scaled.hi + scaled.lo;
    }
}

/// <summary>Eight floats held in registers: one row or column strip of a thread's 8x8 micro tile.
/// Named fields rather than an array so that the accumulators never spill to local memory.</summary>
internal struct Vec8
{
    public float E0, E1, E2, E3, E4, E5, E6, E7;

    /// <summary>Elements offset, offset + stride, …, offset + 7·stride of shared memory.</summary>
    public static Vec8 Load(ArrayView<float> source, int offset, int stride) => new()
    {
        E0 = source[offset], E1 = source[offset + stride],
        E2 = source[offset + 2 * stride], E3 = source[offset + 3 * stride],
        E4 = source[offset + 4 * stride], E5 = source[offset + 5 * stride],
        E6 = source[offset + 6 * stride], E7 = source[offset + 7 * stride],
    };

    /// <summary>this += a · b.</summary>
    public void MultiplyAdd(float a, Vec8 b)
    {
        E0 += a * b.E0; E1 += a * b.E1; E2 += a * b.E2; E3 += a * b.E3;
        E4 += a * b.E4; E5 += a * b.E5; E6 += a * b.E6; E7 += a * b.E7;
    }

    /// <summary>this *= a.</summary>
    public void Scale(float a)
    {
        E0 *= a; E1 *= a; E2 *= a; E3 *= a; E4 *= a; E5 *= a; E6 *= a; E7 *= a;
    }

    public readonly float this[int i] => i switch { 0 => E0, 1 => E1, 2 => E2, 3 => E3, 4 => E4, 5 => E5, 6 => E6, _ => E7 };
}

/// <summary>Four floats in registers: one quad of an operand slab on its way to shared memory.</summary>
internal struct Quad
{
    public float E0, E1, E2, E3;
}

/// <summary>A thread's 8x8 block of C: row i is Ri, column j is element Ej of each row.</summary>
internal struct MicroTile
{
    public Vec8 R0, R1, R2, R3, R4, R5, R6, R7;

    /// <summary>Adds the outer product of column k of the A tile (this thread's rows) and row k of the B tile
    /// (this thread's columns); thread (tx, ty) owns rows ty + side·i and columns tx + side·j of a tile of
    /// 8·side rows.</summary>
    public void Step(ArrayView<float> aTile, ArrayView<float> bTile, int k, int tx, int ty, int side)
    {
        int tile = IlgpuGemmKernel.MicroSize * side;
        Vec8 a = Vec8.Load(aTile, k * tile + ty, side);
        Vec8 b = Vec8.Load(bTile, k * tile + tx, side);
        R0.MultiplyAdd(a.E0, b); R1.MultiplyAdd(a.E1, b); R2.MultiplyAdd(a.E2, b); R3.MultiplyAdd(a.E3, b);
        R4.MultiplyAdd(a.E4, b); R5.MultiplyAdd(a.E5, b); R6.MultiplyAdd(a.E6, b); R7.MultiplyAdd(a.E7, b);
    }
}

/// <summary>Compile-time shape of a GEMM group: <see cref="ThreadsPerSide"/>² threads, each owning an 8x8 micro
/// tile, compute a square tile of C with <see cref="IlgpuGemmKernel.MicroSize"/>·ThreadsPerSide rows. ILGPU
/// specialises the kernel per implementing struct, so the value is a constant in the compiled code.</summary>
internal interface IGemmTile
{
    int ThreadsPerSide { get; }
}

/// <summary>GPUs: 256 threads, 128x128 tiles.</summary>
internal struct GpuGemmTile : IGemmTile
{
    public readonly int ThreadsPerSide => 16;
}

/// <summary>ILGPU's CPU accelerator runs each thread of a group as an OS thread, and a barrier costs about
/// 8 µs per thread there but next to nothing for a group of one: one thread, 8x8 tiles.</summary>
internal struct CpuGemmTile : IGemmTile
{
    public readonly int ThreadsPerSide => 1;
}

/// <summary>
/// Register-blocked SGEMM: a group of side² threads (side = <see cref="IGemmTile.ThreadsPerSide"/>) computes a
/// tile of C with 8·side rows and columns, stepping K by 8 through two stages of shared memory (the next slab is
/// fetched while the current one is multiplied); each thread owns an 8x8 micro tile. Thread (tx, ty) of the
/// side x side grid owns rows ty + side·i and columns tx + side·j, so a warp reads shared memory without bank
/// conflicts and writes C in coalesced runs. Edge tiles load zeros outside the matrices and skip those stores.
/// When the grid of C tiles is too small to fill the GPU and K is long (the weight gradient of a convolution:
/// K = batch · pixels), the host splits K (<see cref="GemmParams.Splits"/>) and <see cref="SumSplits"/> adds
/// the partial products in a fixed order (in double, or compensated in float on devices without float64).
/// </summary>
internal static class IlgpuGemmKernel
{
    public const int MicroSize = 8, TileK = 8;

    public static int GroupSize<TTile>() where TTile : struct, IGemmTile => default(TTile).ThreadsPerSide * default(TTile).ThreadsPerSide;

    public static int TileSize<TTile>() where TTile : struct, IGemmTile => MicroSize * default(TTile).ThreadsPerSide;

    public static KernelConfig Config<TTile>(in GemmParams p, int batch) where TTile : struct, IGemmTile
    {
        int tile = TileSize<TTile>();
        return new(new Index3D((p.N + tile - 1) / tile, (p.M + tile - 1) / tile, batch * p.Splits), new Index3D(GroupSize<TTile>(), 1, 1));
    }

    public static void Gemm<TTile>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmParams p) where TTile : struct, IGemmTile
    {
        int side = default(TTile).ThreadsPerSide, tile = MicroSize * side, slab = tile * TileK;
        // Two stages of k-major tiles ([k · tile + row] for A, [k · tile + col] for B): while the group computes
        // on one, the next slab goes into the other, so one barrier per step suffices.
        var aTiles = SharedMemory.Allocate<float>(2 * slab);
        var bTiles = SharedMemory.Allocate<float>(2 * slab);
        int t = Group.IdxX, tx = t % side, ty = t / side;
        int row0 = Grid.IdxY * tile, col0 = Grid.IdxX * tile, batch = Grid.IdxZ / p.Splits, split = Grid.IdxZ - batch * p.Splits;
        int aBase = batch * p.StrideA, bBase = batch * p.StrideB, cBase = Grid.IdxZ * p.StrideC;
        int kBegin = split * p.KChunk, kEnd = Math.Min(p.K, kBegin + p.KChunk);
        // op(A)(m, k) is k-contiguous unless A is transposed; op(B)(k, n) is n-contiguous unless B is.
        bool aKMajor = p.TransA != 0, bKMajor = p.TransB == 0;
        // With one quad per thread and operand (GPU tiles), the next slab is fetched into registers before the
        // current one is computed, hiding global-memory latency; small groups (CPU accelerator) load directly.
        bool onePass = tile * TileK / 4 == side * side;

        MicroTile acc = default;
        if (kBegin < kEnd)
        {
            LoadTile(a, aBase, p.Lda, aKMajor, p.M, kEnd, row0, kBegin, t, side, aTiles.SubView(0, slab));
            LoadTile(b, bBase, p.Ldb, bKMajor, p.N, kEnd, col0, kBegin, t, side, bTiles.SubView(0, slab));
        }
        Group.Barrier();
        int stage = 0;
        for (int k0 = kBegin; k0 < kEnd; k0 += TileK)
        {
            int next = k0 + TileK;
            var aNextTile = aTiles.SubView((1 - stage) * slab, slab);
            var bNextTile = bTiles.SubView((1 - stage) * slab, slab);
            Quad aNext = default, bNext = default;
            if (next < kEnd)
            {
                if (onePass)
                {
                    aNext = FetchQuad(a, aBase, p.Lda, aKMajor, p.M, kEnd, row0, next, t, tile);
                    bNext = FetchQuad(b, bBase, p.Ldb, bKMajor, p.N, kEnd, col0, next, t, tile);
                }
                else
                {
                    LoadTile(a, aBase, p.Lda, aKMajor, p.M, kEnd, row0, next, t, side, aNextTile);
                    LoadTile(b, bBase, p.Ldb, bKMajor, p.N, kEnd, col0, next, t, side, bNextTile);
                }
            }
            var aTile = aTiles.SubView(stage * slab, slab);
            var bTile = bTiles.SubView(stage * slab, slab);
            // Unrolled by hand (ILGPU does not unroll loops): constant shared-memory offsets, no loop overhead.
            acc.Step(aTile, bTile, 0, tx, ty, side); acc.Step(aTile, bTile, 1, tx, ty, side);
            acc.Step(aTile, bTile, 2, tx, ty, side); acc.Step(aTile, bTile, 3, tx, ty, side);
            acc.Step(aTile, bTile, 4, tx, ty, side); acc.Step(aTile, bTile, 5, tx, ty, side);
            acc.Step(aTile, bTile, 6, tx, ty, side); acc.Step(aTile, bTile, 7, tx, ty, side);
            if (onePass && next < kEnd)
            {
                StoreQuad(aNext, aKMajor, t, tile, aNextTile);
                StoreQuad(bNext, bKMajor, t, tile, bNextTile);
            }
            // Everyone is done reading this stage (the next step overwrites it) and the next stage is written.
            Group.Barrier();
            stage = 1 - stage;
        }

        int row = row0 + ty, col = col0 + tx;
        StoreRow(c, cBase, p, row, col, side, acc.R0);
        StoreRow(c, cBase, p, row + side, col, side, acc.R1);
        StoreRow(c, cBase, p, row + 2 * side, col, side, acc.R2);
        StoreRow(c, cBase, p, row + 3 * side, col, side, acc.R3);
        StoreRow(c, cBase, p, row + 4 * side, col, side, acc.R4);
        StoreRow(c, cBase, p, row + 5 * side, col, side, acc.R5);
        StoreRow(c, cBase, p, row + 6 * side, col, side, acc.R6);
        StoreRow(c, cBase, p, row + 7 * side, col, side, acc.R7);
    }

    /// <summary>Quad <paramref name="u"/> of a tile x TileK slab: four consecutive elements of the operand's
    /// contiguous direction. kMajor: TileK k-lines of tileRows / 4 quads; otherwise tileRows rows of TileK / 4 quads.
    /// Returns the slab row and k of its first element.</summary>
    private static (int Row, int K) QuadOrigin(int u, bool kMajor, int tileRows) => kMajor
        ? ((u % (tileRows / 4)) * 4, u / (tileRows / 4))
        : (u / (TileK / 4), (u % (TileK / 4)) * 4);

    /// <summary>Quad <paramref name="u"/> of the slab (rows row0.., k k0..) of an operand whose element (r, k) is at
    /// <c>kMajor ? k·ld + r : r·ld + k</c>; zeros outside the matrix (rows, depth).</summary>
    private static Quad FetchQuad(ArrayView<float> source, int baseOffset, int ld, bool kMajor, int rows, int depth,
        int row0, int k0, int u, int tileRows)
    {
        var (r, k) = QuadOrigin(u, kMajor, tileRows);
        int gr = row0 + r, gk = k0 + k;
        return new Quad
        {
            E0 = Element(source, baseOffset, ld, kMajor, rows, depth, gr, gk),
            E1 = Element(source, baseOffset, ld, kMajor, rows, depth, kMajor ? gr + 1 : gr, kMajor ? gk : gk + 1),
            E2 = Element(source, baseOffset, ld, kMajor, rows, depth, kMajor ? gr + 2 : gr, kMajor ? gk : gk + 2),
            E3 = Element(source, baseOffset, ld, kMajor, rows, depth, kMajor ? gr + 3 : gr, kMajor ? gk : gk + 3),
        };
    }

    private static float Element(ArrayView<float> source, int baseOffset, int ld, bool kMajor, int rows, int depth, int gr, int gk) =>
        gr < rows && gk < depth ? source[baseOffset + (kMajor ? gk * ld + gr : gr * ld + gk)] : 0f;

    /// <summary>Writes quad <paramref name="u"/> into the k-major slab <paramref name="tile"/>[k · tileRows + r].</summary>
    private static void StoreQuad(Quad quad, bool kMajor, int u, int tileRows, ArrayView<float> tile)
    {
        var (r, k) = QuadOrigin(u, kMajor, tileRows);
        int at = k * tileRows + r, step = kMajor ? 1 : tileRows;
        tile[at] = quad.E0;
        tile[at + step] = quad.E1;
        tile[at + 2 * step] = quad.E2;
        tile[at + 3 * step] = quad.E3;
    }

    /// <summary>Loads the whole tile x TileK slab (rows row0.., k k0..) into <paramref name="tile"/>, 64·side
    /// elements, 64 / side quads per thread, so global reads coalesce.</summary>
    private static void LoadTile(ArrayView<float> source, int baseOffset, int ld, bool kMajor, int rows, int depth, int row0, int k0, int t,
        int side, ArrayView<float> tile)
    {
        int tileRows = MicroSize * side, groupSize = side * side;
        for (int u = t; u < tileRows * TileK / 4; u += groupSize)
            StoreQuad(FetchQuad(source, baseOffset, ld, kMajor, rows, depth, row0, k0, u, tileRows), kMajor, u, tileRows, tile);
    }

    /// <summary>C[row, col + side·j] = α·acc[j] + β·C (C not read when β = 0), inside the matrix only.</summary>
    private static void StoreRow(ArrayView<float> c, int cBase, GemmParams p, int row, int col, int side, Vec8 acc)
    {
        if (row >= p.M) return;
        int rowOffset = cBase + row * p.Ldc;
        for (int j = 0; j < MicroSize; j++)
        {
            int cj = col + j * side;
            if (cj >= p.N) return;
            Store(c, rowOffset + cj, p.Alpha * acc[j], p.Beta);
        }
    }

    /// <summary>C = α · Σ_split partials + β · C for count = batch · M · N elements; partial z = batch · Splits + split
    /// is M × N at z · M · N. Sums with <typeparamref name="TSum"/>, in split order (deterministic).</summary>
    public static void SumSplits<TSum>(int count, ArrayView<float> partials, ArrayView<float> c, GemmParams p)
        where TSum : struct, ISplitSum
    {
        int size = p.M * p.N;
        for (int i = Grid.GlobalIndex.X; i < count; i += Grid.DimX * Group.DimX)
        {
            int batch = i / size, within = i - batch * size, row = within / p.N, col = within - row * p.N;
            var sum = default(TSum);
            for (int split = 0; split < p.Splits; split++) sum.Add(partials[(batch * p.Splits + split) * size + within]);
            Store(c, batch * p.StrideC + row * p.Ldc + col, sum.Scaled(p.Alpha), p.Beta);
        }
    }

    /// <summary><see cref="GemmAccumulation.Float64"/>: one C element per thread (grid-stride over batch · M · N),
    /// the exact float products summed with <typeparamref name="TSum"/> (in double, or float-float on devices without
    /// float64) and rounded once. For parity checks, not for speed.</summary>
    public static void GemmFloat64<TSum>(int count, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmParams p)
        where TSum : struct, IProductSum
    {
        int size = p.M * p.N;
        for (int i = Grid.GlobalIndex.X; i < count; i += Grid.DimX * Group.DimX)
        {
            int batch = i / size, within = i - batch * size, row = within / p.N, col = within - row * p.N;
            int aBase = batch * p.StrideA, bBase = batch * p.StrideB;
            var sum = default(TSum);
            for (int k = 0; k < p.K; k++)
                sum.AddProduct(a[aBase + (p.TransA != 0 ? k * p.Lda + row : row * p.Lda + k)],
                    b[bBase + (p.TransB != 0 ? col * p.Ldb + k : k * p.Ldb + col)]);
            Store(c, batch * p.StrideC + row * p.Ldc + col, sum.Scaled(p.Alpha), p.Beta);
        }
    }

    private static void Store(ArrayView<float> c, int index, float value, float beta) =>
        c[index] = beta == 0f ? value : value + beta * c[index];
}
