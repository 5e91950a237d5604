using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// Managed single-precision GEMM with the semantics of <see cref="GemmArgs"/>: for each batch index i,
/// C_i = alpha · op(A_i) · op(B_i) + beta · C_i, row-major, beta = 0 overwriting C without reading it.
/// Goto/BLIS structure: A and B are packed block by block into contiguous panels (the packing reads the
/// strided, possibly transposed source, so the micro-kernel never sees a transpose), then an
/// MR × NR register-blocked FMA micro-kernel walks the panels. Large products split their C tiles over
/// cores; batches of small products run one product per core instead.
/// </summary>
internal static unsafe class CpuGemm
{
    private const int MR = 12;     // micro-tile rows (broadcast A values)
    private const int NR = 32;     // micro-tile columns (vector lanes)
    private const int KC = 256;    // K depth of a packed block: one KC × NR B panel stays in L1
    private const int MC = 144;    // rows of a compute task: its MC × KC A block stays in L2
    private const int MB = 1536;   // rows packed at once; bounds the A pack buffer
    private const int NC = 4096;   // columns packed at once; the KC × NC B block lives in L3

    /// <summary>Below this many multiply-adds per product, thread hand-off costs more than it saves.</summary>
    private const long ParallelWork = 1L << 20;

    /// <summary>Above this many multiply-adds per product, a batch splits each product over cores rather
    /// than running one product per core (which would need batch ≫ cores to balance).</summary>
    private const long BatchParallelMaxWork = 1L << 24;

    /// <summary>Compute tasks per core, so dynamic scheduling evens out unequal tasks.</summary>
    private const int TasksPerCore = 8;

    /// <summary>Panels per packing task: enough to amortise scheduling, few enough to balance.</summary>
    private const int PackPanelsPerTask = 4;

    /// <summary>Runs <paramref name="g"/> with the accumulation it names; its views must be <see cref="CpuBuffer"/>s.</summary>
    public static void Run(in GemmArgs g)
    {
        if (g.Accumulation == GemmAccumulation.Float64) GemmFloat64(g);
        else Gemm(g);
    }

    private static void Gemm(in GemmArgs g)
    {
        if (!HasProducts(g))
            return;
        long work = (long)g.M * g.N * g.K;
        int cores = Environment.ProcessorCount;
        fixed (float* pa = Data(g.A), pb = Data(g.B), pc = Data(g.C))
        {
            var first = new Job(g.A.Transposed, g.B.Transposed, g.M, g.N, g.K, g.Alpha, pa + g.A.View.Offset, g.A.Ld,
                pb + g.B.View.Offset, g.B.Ld, g.Beta, pc + g.C.View.Offset, g.C.Ld);
            int strideA = g.A.BatchStride, strideB = g.B.BatchStride, strideC = g.C.BatchStride;
            if (cores > 1 && g.Batch > 1 && (work < ParallelWork || (g.Batch >= 2 * cores && work <= BatchParallelMaxWork)))
                RunBatchAcrossCores(first, strideA, strideB, strideC, g.Batch, cores);
            else
                for (int i = 0; i < g.Batch; i++)
                    RunOne(first.ForBatch(i, strideA, strideB, strideC), parallel: cores > 1 && work >= ParallelWork);
        }
    }

    private static float[] Data(in GemmOperand x) => ((CpuBuffer)x.View.Buffer).Data;

    /// <summary>c (m, N) = a (m, K) · P, or with <paramref name="transposed"/> a (m, K) · Pᵀ, for the column matrix P of
    /// a convolution of x (see <see cref="IBackend.ConvGemm"/>), whose B panels are gathered from the images as they are
    /// packed (<see cref="CpuConvLowering.Patches"/>): the column matrix is never written and read back.</summary>
    public static void ConvGemm(float[] a, int ao, float[] x, int xo, float[] c, int co, int m, in ConvGeometry g, bool transposed)
    {
        int rows = g.ColumnRows, columns = g.Batch * g.ColumnCols;
        var (n, k) = transposed ? (rows, columns) : (columns, rows);
        if (m == 0 || n == 0) return;
        if ((long)m * k > a.Length - ao || (long)g.Batch * g.Channels * g.Height * g.Width > x.Length - xo || (long)m * n > c.Length - co)
            throw new ArgumentOutOfRangeException(nameof(g), $"conv gemm: operands too small for {m}×{n}×{k} ({g})");
        if (k == 0)
        {
            c.AsSpan(co, m * n).Clear();
            return;
        }
        fixed (float* pa = a, px = x, pc = c)
        {
            using var patches = new CpuConvLowering.Patches(px + xo, g);
            var job = new Job(false, transposed, m, n, k, 1f, pa + ao, k, null, 0, 0f, pc + co, n) { Patches = patches };
            RunOne(job, parallel: Environment.ProcessorCount > 1 && (long)m * n * k >= ParallelWork);
        }
    }

    /// <summary>Checks the arguments; when there is nothing to multiply (k = 0 or alpha = 0) applies beta
    /// to C and returns false.</summary>
    private static bool HasProducts(in GemmArgs g)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(g.M);
        ArgumentOutOfRangeException.ThrowIfNegative(g.N);
        ArgumentOutOfRangeException.ThrowIfNegative(g.K);
        ArgumentOutOfRangeException.ThrowIfNegative(g.Batch);
        if (g.M == 0 || g.N == 0 || g.Batch == 0)
            return false;
        ArgumentOutOfRangeException.ThrowIfLessThan(g.C.Ld, g.N);
        CheckExtent(g.C, g.Batch, g.M, g.N, "c");
        if (g.K == 0 || g.Alpha == 0f)
        {
            ScaleC(g);
            return false;
        }
        CheckExtent(g.A, g.Batch, g.M, g.K, "a");
        CheckExtent(g.B, g.Batch, g.K, g.N, "b");
        return true;
    }

    /// <summary>
    /// The same product with float64 accumulation (<see cref="GemmAccumulation.Float64"/>): op(A) rows and
    /// op(B) columns are widened to double (a product of two floats is exact in double), each C element is
    /// one double dot product, rounded to float once. For parity checks, not for speed.
    /// </summary>
    private static void GemmFloat64(in GemmArgs g)
    {
        if (!HasProducts(g))
            return;
        int m = g.M, n = g.N, k = g.K, lda = g.A.Ld, ldb = g.B.Ld, ldc = g.C.Ld;
        bool transA = g.A.Transposed, transB = g.B.Transposed;
        float alpha = g.Alpha, beta = g.Beta;
        float[] a = Data(g.A), b = Data(g.B), c = Data(g.C);
        var rows = new double[(long)m * k];     // op(A) row-major
        var columns = new double[(long)n * k];  // op(B) column-major: column j at j·k
        for (int i = 0; i < g.Batch; i++)
        {
            int a0 = g.A.View.Offset + i * g.A.BatchStride, b0 = g.B.View.Offset + i * g.B.BatchStride;
            int c0 = g.C.View.Offset + i * g.C.BatchStride;
            CpuParallel.For(m, k, (start, end) =>
            {
                for (int r = start; r < end; r++)
                    for (int p = 0; p < k; p++)
                        rows[(long)r * k + p] = a[a0 + (transA ? p * lda + r : r * lda + p)];
            });
            CpuParallel.For(n, k, (start, end) =>
            {
                for (int j = start; j < end; j++)
                    for (int p = 0; p < k; p++)
                        columns[(long)j * k + p] = b[b0 + (transB ? j * ldb + p : p * ldb + j)];
            });
            CpuParallel.For(m, 2L * n * k, (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    var row = new ReadOnlySpan<double>(rows, r * k, k);
                    for (int j = 0; j < n; j++)
                    {
                        float value = (float)(alpha * TensorPrimitives.Dot(row, new ReadOnlySpan<double>(columns, j * k, k)));
                        ref float target = ref c[c0 + r * ldc + j];
                        target = beta == 0f ? value : value + beta * target;
                    }
                }
            });
        }
    }

    /// <summary>One product, optionally split over cores, with pooled pack buffers.</summary>
    private static void RunOne(in Job job, bool parallel)
    {
        float[] packA = ArrayPool<float>.Shared.Rent(PackALength(job));
        float[] packB = ArrayPool<float>.Shared.Rent(PackBLength(job));
        fixed (float* pa = packA, pb = packB)
            Blocked(job, pa, pb, parallel);
        ArrayPool<float>.Shared.Return(packA);
        ArrayPool<float>.Shared.Return(packB);
    }

    /// <summary>Many small products: each worker takes a contiguous slice of the batch and runs its
    /// products serially, reusing one pair of pack buffers.</summary>
    private static void RunBatchAcrossCores(Job first, int strideA, int strideB, int strideC, int batch, int cores)
    {
        int slices = Math.Min(batch, 4 * cores);
        CpuWorkers.Shared.Run(slices, slice =>
        {
            float[] packA = ArrayPool<float>.Shared.Rent(PackALength(first));
            float[] packB = ArrayPool<float>.Shared.Rent(PackBLength(first));
            fixed (float* pa = packA, pb = packB)
            {
                int end = (int)((long)(slice + 1) * batch / slices);
                for (int i = (int)((long)slice * batch / slices); i < end; i++)
                    Blocked(first.ForBatch(i, strideA, strideB, strideC), pa, pb, parallel: false);
            }
            ArrayPool<float>.Shared.Return(packA);
            ArrayPool<float>.Shared.Return(packB);
        });
    }

    private static int PackALength(in Job job) => RoundUp(Math.Min(job.M, MB), MR) * Math.Min(job.K, KC);

    private static int PackBLength(in Job job) => RoundUp(Math.Min(job.N, NC), NR) * Math.Min(job.K, KC);

    /// <summary>The blocked loop nest: for each NC-column × MB-row × KC-deep block, pack A and B, then
    /// run the micro-kernel over every micro-tile. The first K block applies beta; later ones add.</summary>
    private static void Blocked(Job job, float* packA, float* packB, bool parallel)
    {
        for (int jc = 0; jc < job.N; jc += NC)
        {
            int nc = Math.Min(NC, job.N - jc);
            int bPanels = (nc + NR - 1) / NR;
            for (int ic = 0; ic < job.M; ic += MB)
            {
                int mb = Math.Min(MB, job.M - ic);
                int aPanels = (mb + MR - 1) / MR;
                int rowBlocks = (aPanels + MC / MR - 1) / (MC / MR);
                int colBlocks = parallel
                    ? Math.Clamp((TasksPerCore * Environment.ProcessorCount + rowBlocks - 1) / rowBlocks, 1, bPanels)
                    : 1;
                for (int pc = 0, depth = BlockDepth(job.K); pc < job.K; pc += depth)
                {
                    int kc = Math.Min(depth, job.K - pc);
                    float beta = pc == 0 ? job.Beta : 1f;
                    var block = new Block(ic, mb, aPanels, jc, nc, bPanels, pc, kc, beta);
                    if (parallel)
                    {
                        ParallelStep(job, block, packA, packB, rowBlocks, colBlocks);
                    }
                    else
                    {
                        PackA(job, block, packA, 0, aPanels);
                        PackB(job, block, packB, 0, bPanels);
                        Compute(job, block, packA, packB, 0, 1, 0, 1);
                    }
                }
            }
        }
    }

    /// <summary>The depth of each K block: K split into equal blocks of at most KC, since a short last block (K = 576 as
    /// 256 + 256 + 64) spent a whole pass over C on few products.</summary>
    private static int BlockDepth(int k)
    {
        int blocks = (k + KC - 1) / KC;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>Packs, then multiplies, one block on all cores. Kept apart from <see cref="Blocked"/> so the
    /// serial path allocates no closures.</summary>
    private static void ParallelStep(Job job, Block block, float* packA, float* packB, int rowBlocks, int colBlocks)
    {
        int aTasks = (block.APanels + PackPanelsPerTask - 1) / PackPanelsPerTask;
        int bTasks = (block.BPanels + PackPanelsPerTask - 1) / PackPanelsPerTask;
        CpuWorkers.Shared.Run(aTasks + bTasks, task =>
        {
            if (task < aTasks)
                PackA(job, block, packA, task * PackPanelsPerTask, Math.Min(block.APanels, (task + 1) * PackPanelsPerTask));
            else
                PackB(job, block, packB, (task - aTasks) * PackPanelsPerTask,
                    Math.Min(block.BPanels, (task - aTasks + 1) * PackPanelsPerTask));
        });
        CpuWorkers.Shared.Run(rowBlocks * colBlocks, task =>
            Compute(job, block, packA, packB, task / colBlocks, rowBlocks, task % colBlocks, colBlocks));
    }

    /// <summary>Packs A panels [first, last) of the block: rows × depth of op(A) as panel[p·MR + r],
    /// zero-padded to MR rows.</summary>
    private static void PackA(in Job job, in Block block, float* packA, int first, int last)
    {
        int kc = block.Depth;
        if (job.TransA)
        {
            // op(A) rows are contiguous in memory: walk each source row once across all panels.
            float* src = job.A + (nint)block.K0 * job.Lda + block.Row0;
            for (int p = 0; p < kc; p++, src += job.Lda)
            {
                for (int panel = first; panel < last; panel++)
                {
                    float* dst = packA + ((nint)panel * kc + p) * MR;
                    int row = panel * MR, rows = Math.Min(MR, block.Rows - row);
                    if (rows == MR)
                        Unsafe.CopyBlockUnaligned(dst, src + row, MR * sizeof(float));
                    else
                        for (int r = 0; r < MR; r++)
                            dst[r] = r < rows ? src[row + r] : 0f;
                }
            }
        }
        else
        {
            for (int panel = first; panel < last; panel++)
            {
                float* dst = packA + (nint)panel * kc * MR;
                int row = panel * MR, rows = Math.Min(MR, block.Rows - row);
                float* src = job.A + (nint)(block.Row0 + row) * job.Lda + block.K0;
                int r = 0;
                if (rows == MR) // eight rows by AVX transposes: element-wise packing cost as much as small-N products
                {
                    PackEightColumns(src, job.Lda, dst, MR, kc);
                    r = 8;
                    src += 8 * (nint)job.Lda;
                }
                for (; r < rows; r++, src += job.Lda)
                    for (int p = 0; p < kc; p++)
                        dst[p * MR + r] = src[p];
                for (r = rows; r < MR; r++)
                    for (int p = 0; p < kc; p++)
                        dst[p * MR + r] = 0f;
            }
        }
    }

    /// <summary>Packs B panels [first, last) of the block: depth × columns of op(B) as panel[p·NR + j],
    /// zero-padded to NR columns.</summary>
    private static void PackB(in Job job, in Block block, float* packB, int first, int last)
    {
        int kc = block.Depth;
        for (int panel = first; panel < last; panel++)
        {
            float* dst = packB + (nint)panel * kc * NR;
            int col = panel * NR, cols = Math.Min(NR, block.Cols - col);
            if (job.Patches is { } patches)
                patches.Pack(dst, NR, block.K0, kc, block.Col0 + col, cols, job.TransB);
            else if (job.TransB)
            {
                float* src = job.B + (nint)(block.Col0 + col) * job.Ldb + block.K0;
                int j = 0;
                for (; j + 8 <= cols; j += 8) PackEightColumns(src + (nint)j * job.Ldb, job.Ldb, dst + j, NR, kc);
                for (; j < cols; j++)
                    for (int p = 0; p < kc; p++)
                        dst[p * NR + j] = src[(nint)j * job.Ldb + p];
                for (; j < NR; j++)
                    for (int p = 0; p < kc; p++)
                        dst[p * NR + j] = 0f;
            }
            else
            {
                float* src = job.B + (nint)block.K0 * job.Ldb + block.Col0 + col;
                for (int p = 0; p < kc; p++, src += job.Ldb, dst += NR)
                {
                    if (cols == NR)
                        Unsafe.CopyBlockUnaligned(dst, src, NR * sizeof(float));
                    else
                        for (int j = 0; j < NR; j++)
                            dst[j] = j < cols ? src[j] : 0f;
                }
            }
        }
    }

    /// <summary>Packs 8 source rows of <paramref name="depth"/> contiguous values (columns of op(B) or rows of op(A),
    /// <paramref name="ld"/> apart) as 8 adjacent columns of a panel whose rows are <paramref name="width"/> apart: an AVX
    /// 8×8 transpose per 8 steps of depth, where element-wise stores into panel rows made packing as slow as the product
    /// itself when the other dimension is small.</summary>
    internal static void PackEightColumns(float* src, int ld, float* dst, int width, int depth)
    {
        int p = 0;
        if (Avx.IsSupported)
            for (; p + 8 <= depth; p += 8) Transpose8x8(src + p, ld, dst + (nint)p * width, width);
        for (; p < depth; p++)
            for (int j = 0; j < 8; j++)
                dst[(nint)p * width + j] = src[(nint)j * ld + p];
    }

    /// <summary>dst rows 0..7 (<paramref name="width"/> apart) = columns 0..7 of the 8×8 block at src (rows ld apart).</summary>
    private static void Transpose8x8(float* src, int ld, float* dst, int width)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + ld);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * ld), r3 = Avx.LoadVector256(src + 3 * ld);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * ld), r5 = Avx.LoadVector256(src + 5 * ld);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * ld), r7 = Avx.LoadVector256(src + 7 * ld);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3);
        Vector256<float> t3 = Avx.UnpackHigh(r2, r3), t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44);
        Vector256<float> u3 = Avx.Shuffle(t1, t3, 0xEE), u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + width, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * width, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * width, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * width, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * width, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * width, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * width, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>Runs the micro-kernel over the C tiles of one (row block, column block) task. The B panel
    /// is the outer loop so it stays in L1 while the A panels of the task stream from L2.</summary>
    private static void Compute(in Job job, in Block block, float* packA, float* packB,
        int rowBlock, int rowBlocks, int colBlock, int colBlocks)
    {
        int ip0 = (int)((long)rowBlock * block.APanels / rowBlocks), ip1 = (int)((long)(rowBlock + 1) * block.APanels / rowBlocks);
        int jp0 = (int)((long)colBlock * block.BPanels / colBlocks), jp1 = (int)((long)(colBlock + 1) * block.BPanels / colBlocks);
        int kc = block.Depth;
        for (int jp = jp0; jp < jp1; jp++)
        {
            int col = jp * NR;
            int cols = Math.Min(NR, block.Cols - col);
            float* bPanel = packB + (nint)jp * NR * kc;
            for (int ip = ip0; ip < ip1; ip++)
            {
                int row = ip * MR;
                int rows = Math.Min(MR, block.Rows - row);
                float* aPanel = packA + (nint)ip * MR * kc;
                float* cTile = job.C + (nint)(block.Row0 + row) * job.Ldc + block.Col0 + col;
                if (rows == MR && cols == NR)
                    MicroKernel(kc, aPanel, bPanel, cTile, job.Ldc, job.Alpha, block.Beta);
                else
                    EdgeTile(kc, aPanel, bPanel, cTile, job.Ldc, job.Alpha, block.Beta, rows, cols);
            }
        }
    }

    /// <summary>A partial tile: the kernel writes a full tile to the stack, then only the valid part is merged into C.</summary>
    [SkipLocalsInit]
    private static void EdgeTile(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, int rows, int cols)
    {
        float* tile = stackalloc float[MR * NR];
        MicroKernel(kc, a, b, tile, NR, alpha, 0f);
        for (int r = 0; r < rows; r++)
        {
            float* src = tile + r * NR;
            float* dst = c + (nint)r * ldc;
            if (beta == 0f)
                for (int j = 0; j < cols; j++)
                    dst[j] = src[j];
            else
                for (int j = 0; j < cols; j++)
                    dst[j] = src[j] + beta * dst[j];
        }
    }

    /// <summary>C tile (MR x NR at <paramref name="c"/>) = alpha * (packed A panel x packed B panel) + beta * C tile;
    /// beta = 0 does not read C. The 24 accumulators stay in registers for the whole K loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            MicroKernel256(kc, a, b, c, ldc, alpha, beta);
            return;
        }
        Vector512<float> c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, c3_1, c4_0, c4_1, c5_0, c5_1,
            c6_0, c6_1, c7_0, c7_1, c8_0, c8_1, c9_0, c9_1, c10_0, c10_1, c11_0, c11_1;
        c0_0 = c0_1 = c1_0 = c1_1 = c2_0 = c2_1 = c3_0 = c3_1 = c4_0 = c4_1 = c5_0 = c5_1 =
            c6_0 = c6_1 = c7_0 = c7_1 = c8_0 = c8_1 = c9_0 = c9_1 = c10_0 = c10_1 = c11_0 = c11_1 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            Vector512<float> ar = Vector512.Create(a[0]);
            c0_0 = Vector512.FusedMultiplyAdd(ar, b0, c0_0);
            c0_1 = Vector512.FusedMultiplyAdd(ar, b1, c0_1);
            ar = Vector512.Create(a[1]);
            c1_0 = Vector512.FusedMultiplyAdd(ar, b0, c1_0);
            c1_1 = Vector512.FusedMultiplyAdd(ar, b1, c1_1);
            ar = Vector512.Create(a[2]);
            c2_0 = Vector512.FusedMultiplyAdd(ar, b0, c2_0);
            c2_1 = Vector512.FusedMultiplyAdd(ar, b1, c2_1);
            ar = Vector512.Create(a[3]);
            c3_0 = Vector512.FusedMultiplyAdd(ar, b0, c3_0);
            c3_1 = Vector512.FusedMultiplyAdd(ar, b1, c3_1);
            ar = Vector512.Create(a[4]);
            c4_0 = Vector512.FusedMultiplyAdd(ar, b0, c4_0);
            c4_1 = Vector512.FusedMultiplyAdd(ar, b1, c4_1);
            ar = Vector512.Create(a[5]);
            c5_0 = Vector512.FusedMultiplyAdd(ar, b0, c5_0);
            c5_1 = Vector512.FusedMultiplyAdd(ar, b1, c5_1);
            ar = Vector512.Create(a[6]);
            c6_0 = Vector512.FusedMultiplyAdd(ar, b0, c6_0);
            c6_1 = Vector512.FusedMultiplyAdd(ar, b1, c6_1);
            ar = Vector512.Create(a[7]);
            c7_0 = Vector512.FusedMultiplyAdd(ar, b0, c7_0);
            c7_1 = Vector512.FusedMultiplyAdd(ar, b1, c7_1);
            ar = Vector512.Create(a[8]);
            c8_0 = Vector512.FusedMultiplyAdd(ar, b0, c8_0);
            c8_1 = Vector512.FusedMultiplyAdd(ar, b1, c8_1);
            ar = Vector512.Create(a[9]);
            c9_0 = Vector512.FusedMultiplyAdd(ar, b0, c9_0);
            c9_1 = Vector512.FusedMultiplyAdd(ar, b1, c9_1);
            ar = Vector512.Create(a[10]);
            c10_0 = Vector512.FusedMultiplyAdd(ar, b0, c10_0);
            c10_1 = Vector512.FusedMultiplyAdd(ar, b1, c10_1);
            ar = Vector512.Create(a[11]);
            c11_0 = Vector512.FusedMultiplyAdd(ar, b0, c11_0);
            c11_1 = Vector512.FusedMultiplyAdd(ar, b1, c11_1);
            a += MR;
            b += NR;
        }
        Vector512<float> va = Vector512.Create(alpha);
        UpdateRow(c, c0_0, c0_1, va, beta);
        UpdateRow(c + 1 * ldc, c1_0, c1_1, va, beta);
        UpdateRow(c + 2 * ldc, c2_0, c2_1, va, beta);
        UpdateRow(c + 3 * ldc, c3_0, c3_1, va, beta);
        UpdateRow(c + 4 * ldc, c4_0, c4_1, va, beta);
        UpdateRow(c + 5 * ldc, c5_0, c5_1, va, beta);
        UpdateRow(c + 6 * ldc, c6_0, c6_1, va, beta);
        UpdateRow(c + 7 * ldc, c7_0, c7_1, va, beta);
        UpdateRow(c + 8 * ldc, c8_0, c8_1, va, beta);
        UpdateRow(c + 9 * ldc, c9_0, c9_1, va, beta);
        UpdateRow(c + 10 * ldc, c10_0, c10_1, va, beta);
        UpdateRow(c + 11 * ldc, c11_0, c11_1, va, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UpdateRow(float* row, Vector512<float> v0, Vector512<float> v1, Vector512<float> alpha, float beta)
    {
        if (beta == 0f)
        {
            (v0 * alpha).Store(row + 0);
            (v1 * alpha).Store(row + 16);
        }
        else if (beta == 1f)
        {
            Vector512.FusedMultiplyAdd(v0, alpha, Vector512.Load(row + 0)).Store(row + 0);
            Vector512.FusedMultiplyAdd(v1, alpha, Vector512.Load(row + 16)).Store(row + 16);
        }
        else
        {
            Vector512<float> vb = Vector512.Create(beta);
            Vector512.FusedMultiplyAdd(v0, alpha, Vector512.Load(row + 0) * vb).Store(row + 0);
            Vector512.FusedMultiplyAdd(v1, alpha, Vector512.Load(row + 16) * vb).Store(row + 16);
        }
    }

    /// <summary>Without AVX-512 there are only 16 vector registers, so the MR × NR tile is computed as
    /// 6 × 16 quarters (12 accumulators each) reading the same packed panels. It repeats
    /// <see cref="MicroKernel"/>'s unrolled shape on purpose: accumulators must be named locals to stay in registers.</summary>
    private static void MicroKernel256(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta)
    {
        for (int row = 0; row < MR; row += 6)
            for (int col = 0; col < NR; col += 16)
                QuarterKernel256(kc, a + row, b + col, c + (nint)row * ldc + col, ldc, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuarterKernel256(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta)
    {
        Vector256<float> c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, c3_1, c4_0, c4_1, c5_0, c5_1;
        c0_0 = c0_1 = c1_0 = c1_1 = c2_0 = c2_1 = c3_0 = c3_1 = c4_0 = c4_1 = c5_0 = c5_1 = Vector256<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
            Vector256<float> ar = Vector256.Create(a[0]);
            c0_0 = Vector256.FusedMultiplyAdd(ar, b0, c0_0);
            c0_1 = Vector256.FusedMultiplyAdd(ar, b1, c0_1);
            ar = Vector256.Create(a[1]);
            c1_0 = Vector256.FusedMultiplyAdd(ar, b0, c1_0);
            c1_1 = Vector256.FusedMultiplyAdd(ar, b1, c1_1);
            ar = Vector256.Create(a[2]);
            c2_0 = Vector256.FusedMultiplyAdd(ar, b0, c2_0);
            c2_1 = Vector256.FusedMultiplyAdd(ar, b1, c2_1);
            ar = Vector256.Create(a[3]);
            c3_0 = Vector256.FusedMultiplyAdd(ar, b0, c3_0);
            c3_1 = Vector256.FusedMultiplyAdd(ar, b1, c3_1);
            ar = Vector256.Create(a[4]);
            c4_0 = Vector256.FusedMultiplyAdd(ar, b0, c4_0);
            c4_1 = Vector256.FusedMultiplyAdd(ar, b1, c4_1);
            ar = Vector256.Create(a[5]);
            c5_0 = Vector256.FusedMultiplyAdd(ar, b0, c5_0);
            c5_1 = Vector256.FusedMultiplyAdd(ar, b1, c5_1);
            a += MR;
            b += NR;
        }
        Vector256<float> va = Vector256.Create(alpha);
        UpdateRow(c, c0_0, c0_1, va, beta);
        UpdateRow(c + 1 * ldc, c1_0, c1_1, va, beta);
        UpdateRow(c + 2 * ldc, c2_0, c2_1, va, beta);
        UpdateRow(c + 3 * ldc, c3_0, c3_1, va, beta);
        UpdateRow(c + 4 * ldc, c4_0, c4_1, va, beta);
        UpdateRow(c + 5 * ldc, c5_0, c5_1, va, beta);
    }

    // The Vector256 twin of the Vector512 UpdateRow, kept apart like the two micro-kernels it serves.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UpdateRow(float* row, Vector256<float> v0, Vector256<float> v1, Vector256<float> alpha, float beta)
    {
        if (beta == 0f)
        {
            (v0 * alpha).Store(row + 0);
            (v1 * alpha).Store(row + 8);
        }
        else if (beta == 1f)
        {
            Vector256.FusedMultiplyAdd(v0, alpha, Vector256.Load(row + 0)).Store(row + 0);
            Vector256.FusedMultiplyAdd(v1, alpha, Vector256.Load(row + 8)).Store(row + 8);
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            Vector256.FusedMultiplyAdd(v0, alpha, Vector256.Load(row + 0) * vb).Store(row + 0);
            Vector256.FusedMultiplyAdd(v1, alpha, Vector256.Load(row + 8) * vb).Store(row + 8);
        }
    }

    /// <summary>C = beta · C for every batch entry (k = 0 or alpha = 0: the product contributes nothing).</summary>
    private static void ScaleC(in GemmArgs g)
    {
        if (g.Beta == 1f)
            return;
        float[] c = Data(g.C);
        for (int i = 0; i < g.Batch; i++)
        {
            for (int r = 0; r < g.M; r++)
            {
                Span<float> row = c.AsSpan(g.C.View.Offset + i * g.C.BatchStride + r * g.C.Ld, g.N);
                if (g.Beta == 0f)
                    row.Clear();
                else
                    TensorPrimitives.Multiply(row, g.Beta, row);
            }
        }
    }

    /// <summary>The kernels use raw pointers, so every element a batch entry of op(x) (rows × cols) can touch must be
    /// inside the array.</summary>
    private static void CheckExtent(in GemmOperand x, int batch, int rows, int cols, string name)
    {
        if (x.Transposed)
            (rows, cols) = (cols, rows);
        if (rows == 0 || cols == 0)
            return;
        ArgumentOutOfRangeException.ThrowIfNegative(x.Ld, name + " leading dimension");
        int length = Data(x).Length, offset = x.View.Offset;
        long last = offset + (long)(batch - 1) * x.BatchStride;
        long extent = (long)(rows - 1) * x.Ld + cols;
        if (Math.Min(offset, last) < 0 || Math.Max(offset, last) + extent > length)
            throw new ArgumentOutOfRangeException(name,
                $"{batch} matrices of {rows}×{cols} (ld {x.Ld}, offset {offset}, stride {x.BatchStride}) exceed the array of {length}.");
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>One product's operands, already offset to its batch entry.</summary>
    private readonly struct Job(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        public readonly bool TransA = transA, TransB = transB;
        public readonly int M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly float Alpha = alpha, Beta = beta;
        public readonly float* A = a, B = b, C = c;
        /// <summary>Where B is a convolution's column matrix gathered from its images (B itself is then unused).</summary>
        public CpuConvLowering.Patches? Patches { get; init; }

        public Job ForBatch(int i, int strideA, int strideB, int strideC) =>
            new(TransA, TransB, M, N, K, Alpha, A + (nint)i * strideA, Lda, B + (nint)i * strideB, Ldb, Beta, C + (nint)i * strideC, Ldc);
    }

    /// <summary>The packed block being multiplied: rows [Row0, Row0 + Rows) × columns [Col0, Col0 + Cols) of C,
    /// depth [K0, K0 + Depth); Beta is the caller's beta for the first K block and 1 afterwards.</summary>
    private readonly record struct Block(int Row0, int Rows, int APanels, int Col0, int Cols, int BPanels, int K0, int Depth, float Beta);
}
