using System.Linq.Expressions;
using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>
/// Executor on one ILGPU accelerator: <c>cuda[:N]</c>, <c>opencl[:N]</c> or <c>ilgpu-cpu</c>. Kernels
/// are queued on the accelerator's default stream and run asynchronously; <see cref="Download"/> and
/// <see cref="Synchronize"/> wait. Each kernel (each op instantiation) is compiled once per backend.
/// Group shapes depend on the accelerator: GPUs get the large tiles (<see cref="GpuGemmTile"/>,
/// <see cref="GpuAttentionTile"/>, 256-thread rows); ILGPU's CPU accelerator, whose group threads are OS
/// threads, runs the same kernels with small groups (<see cref="CpuGemmTile"/>, <see cref="CpuAttentionTile"/>).
/// Several threads may use one backend: on OpenCL every launch holds <see cref="launchGate"/> (<see cref="Serialised"/>).
/// </summary>
public sealed class IlgpuBackend : IBackend
{
    private readonly Accelerator accelerator;
    private readonly Dictionary<(string Kernel, Type? Op), Delegate> launchers = new();
    private readonly bool smallGroups;
    private readonly int rowGroupSize;

    /// <summary>Held by every launch where ILGPU's launcher is not thread-safe (<see cref="serialisedLaunches"/>) and,
    /// on every accelerator, by the primitives that run several kernels on <see cref="scratch"/>, so that another
    /// thread's launches cannot come between them.</summary>
    private readonly object launchGate = new();

    /// <summary>On OpenCL: ILGPU sets a launch's arguments on the kernel object all launches of that kernel share and
    /// then enqueues it, without a lock (two threads launching one kernel on rusticl got wrong results in 3–4 of 600
    /// launches and once crashed the driver). Its CUDA launcher passes the arguments with the launch, and its CPU
    /// accelerator runs one launch at a time.</summary>
    private readonly bool serialisedLaunches;

    private IlgpuBackend(Accelerator accelerator, DeviceInfo info)
    {
        this.accelerator = accelerator;
        Info = info;
        Float64 = info.Float64;
        serialisedLaunches = accelerator.AcceleratorType == AcceleratorType.OpenCL;
        smallGroups = accelerator.AcceleratorType == AcceleratorType.CPU;
        ChunkedReductions = !smallGroups;
        // One thread per row on the CPU accelerator: its barriers are then free. The tree reduction needs a power of two.
        rowGroupSize = smallGroups
            ? 1
            : 1 << BitOperations.Log2((uint)Math.Min(IlgpuKernels.MaxRowGroupSize, accelerator.MaxNumThreadsPerGroup));
    }

    /// <summary>The most threads per group the GEMM and attention kernels launch with on this accelerator.</summary>
    private int KernelGroupSize => smallGroups
        ? Math.Max(IlgpuGemmKernel.GroupSize<CpuGemmTile>(), IlgpuAttentionKernels.MaxGroupSize<CpuAttentionTile>())
        : Math.Max(IlgpuGemmKernel.GroupSize<GpuGemmTile>(), IlgpuAttentionKernels.MaxGroupSize<GpuAttentionTile>());

    public DeviceInfo Info { get; }

    /// <summary>Opens device <paramref name="index"/> of <paramref name="kind"/> ("cuda", "opencl" or
    /// "ilgpu-cpu"); throws, listing the present devices, when it is absent.</summary>
    public static IlgpuBackend Create(string kind, int index = 0)
    {
        string name = IlgpuRuntime.DeviceName(kind, index);
        var devices = IlgpuRuntime.Devices();
        foreach (var (deviceName, device) in devices)
        {
            if (deviceName != name) continue;
            var backend = new IlgpuBackend(device.CreateAccelerator(IlgpuRuntime.Context), IlgpuRuntime.Describe(name, device));
            if (backend.accelerator.MaxNumThreadsPerGroup < backend.KernelGroupSize)
            {
                backend.Dispose();
                throw new NotSupportedException($"{name} allows {backend.accelerator.MaxNumThreadsPerGroup} threads per group; "
                    + $"the kernels need {backend.KernelGroupSize}");
            }
            return backend;
        }
        string present = devices.Count == 0 ? "none" : string.Join(", ", devices.Select(d => d.Name));
        throw new ArgumentException($"ILGPU device '{name}' is not present; present ILGPU devices: {present}", nameof(kind));
    }

    /// <summary>The devices ILGPU can open on this machine (no drivers: only ilgpu-cpu).</summary>
    public static IReadOnlyList<DeviceInfo> Enumerate() =>
        IlgpuRuntime.Devices().Select(d => IlgpuRuntime.Describe(d.Name, d.Device)).ToList();

    public void Dispose()
    {
        scratch?.Dispose();
        accelerator.Dispose();
    }

    private AcceleratorStream Stream => accelerator.DefaultStream;

    /// <summary>The CUDA stream kernels are queued on and the device address of <paramref name="view"/>, for libraries that
    /// work on device memory in stream order (NCCL); null on other accelerators.</summary>
    internal (IntPtr Stream, IntPtr Address)? CudaHandles(BufferView view) =>
        accelerator.DefaultStream is ILGPU.Runtime.Cuda.CudaStream stream
        ? (stream.StreamPtr, ((IlgpuBuffer)view.Buffer).Memory.NativePtr + view.Offset * sizeof(float))
        : null;

    private static ArrayView<float> View(BufferView view) => ((IlgpuBuffer)view.Buffer).ViewFrom(view.Offset);

    private static ArrayView<int> IntView(BufferView view) => View(view).Cast<int>();

    /// <summary>The compiled launcher of a kernel, loading it on first use.</summary>
    private T Launcher<T>(string kernel, Type? op, Func<T> load) where T : Delegate
    {
        lock (launchers)
        {
            if (!launchers.TryGetValue((kernel, op), out var launcher))
                launchers[(kernel, op)] = launcher = serialisedLaunches ? Serialised(load()) : load();
            return (T)launcher;
        }
    }

    /// <summary>The same launch, holding <see cref="launchGate"/> while ILGPU sets its arguments and enqueues it.
    /// Built as an expression because the launchers are delegates of every arity.</summary>
    private T Serialised<T>(T launch) where T : Delegate
    {
        var arguments = typeof(T).GetMethod(nameof(Action.Invoke))!.GetParameters()
            .Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        var gate = Expression.Constant(launchGate);
        var body = Expression.Block(
            Expression.Call(typeof(Monitor).GetMethod(nameof(Monitor.Enter), [typeof(object)])!, gate),
            Expression.TryFinally(Expression.Invoke(Expression.Constant(launch), arguments),
                Expression.Call(typeof(Monitor).GetMethod(nameof(Monitor.Exit), [typeof(object)])!, gate)));
        return Expression.Lambda<T>(body, arguments).Compile();
    }

    /// <summary>Whether kernels may compute in double: the device's report (<see cref="DeviceInfo.Float64"/>); a test
    /// clears it to run the paths of devices without float64 on the CPU accelerator.</summary>
    internal bool Float64 { get; set; }

    /// <summary>Launch of an element kernel over <paramref name="count"/> elements (a grid-stride loop): one
    /// element per thread on a GPU; on the CPU accelerator one single-thread group per multiprocessor, since
    /// there each group costs microseconds of hand-over between OS threads and each element only nanoseconds.</summary>
    private KernelConfig ElementConfig(int count) => smallGroups
        ? new KernelConfig(Math.Min(count, accelerator.NumMultiprocessors), 1)
        : new KernelConfig((count + ElementGroupSize - 1) / ElementGroupSize, ElementGroupSize);

    private const int ElementGroupSize = 256;

    // ---- memory ----

    public DeviceBuffer Allocate(int length) => new IlgpuBuffer(accelerator.Allocate1D<float>(length));

    // The host span is pinned for the copy: ILGPU takes a raw reference and the GC could move it.
    public unsafe void Upload(ReadOnlySpan<float> source, BufferView destination)
    {
        if (source.IsEmpty) return;
        fixed (float* host = source)
            View(destination).SubView(0, source.Length).CopyFromCPU(Stream, ref *host, source.Length);
    }

    public unsafe void Download(BufferView source, Span<float> destination)
    {
        if (destination.IsEmpty)
        {
            Synchronize();
            return;
        }
        fixed (float* host = destination)
            View(source).SubView(0, destination.Length).CopyToCPU(Stream, ref *host, destination.Length);
    }

    public void Synchronize() => Stream.Synchronize();

    public void Fill(BufferView destination, int count, float value)
    {
        if (count == 0) return;
        Launcher(nameof(IlgpuKernels.Fill), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, float>(IlgpuKernels.Fill))
            (ElementConfig(count), count, View(destination), value);
    }

    public void StridedCopy(BufferView source, Dim6 sourceStrides, BufferView destination, Dim6 destinationStrides, Dim6 shape, int rank)
    {
        int count = Dim6.Count(shape, rank);
        if (count == 0) return;
        if (rank == 1 && sourceStrides.D0 == 1 && destinationStrides.D0 == 1)
        {
            View(source).SubView(0, count).CopyTo(Stream, View(destination).SubView(0, count));
            return;
        }
        Launcher(nameof(IlgpuKernels.StridedCopy), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, Dim6, ArrayView<float>, Dim6, Dim6, int>(IlgpuKernels.StridedCopy))
            (ElementConfig(count), count, View(source), sourceStrides, View(destination), destinationStrides, shape, rank);
    }

    // ---- elementwise ----

    public void Unary<TOp>(BufferView x, BufferView y, int n, float a, float b) where TOp : struct, IUnaryOp
    {
        if (n == 0) return;
        Launcher(nameof(IlgpuKernels.Unary), typeof(TOp),
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, float, float>(IlgpuKernels.Unary<TOp>))
            (ElementConfig(n), n, View(x), View(y), a, b);
    }

    public void UnaryBackward<TOp>(BufferView x, BufferView y, BufferView dy, BufferView dx, int n, float a, float b)
        where TOp : struct, IUnaryOp
    {
        if (n == 0) return;
        Launcher(nameof(IlgpuKernels.UnaryBackward), typeof(TOp),
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float>(
                IlgpuKernels.UnaryBackward<TOp>))
            (ElementConfig(n), n, View(x), View(y), View(dy), View(dx), a, b);
    }

    public void Binary<TOp>(BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides, BufferView y, Dim6 shape, int rank)
        where TOp : struct, IBinaryOp
    {
        int count = Dim6.Count(shape, rank);
        if (count == 0) return;
        if (rank == 1 && aStrides.D0 == 1 && bStrides.D0 == 1)
        {
            Launcher(nameof(IlgpuKernels.BinaryContiguous), typeof(TOp),
                () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(
                    IlgpuKernels.BinaryContiguous<TOp>))
                (ElementConfig(count), count, View(a), View(b), View(y));
            return;
        }
        Launcher(nameof(IlgpuKernels.Binary), typeof(TOp),
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, Dim6, ArrayView<float>, Dim6, ArrayView<float>, Dim6, int>(
                IlgpuKernels.Binary<TOp>))
            (ElementConfig(count), count, View(a), aStrides, View(b), bStrides, View(y), shape, rank);
    }

    public void Where(BufferView condition, Dim6 conditionStrides, BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides,
        BufferView y, Dim6 shape, int rank)
    {
        int count = Dim6.Count(shape, rank);
        if (count == 0) return;
        Launcher(nameof(IlgpuKernels.Where), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, Dim6, ArrayView<float>, Dim6, ArrayView<float>, Dim6,
                ArrayView<float>, Dim6, int>(IlgpuKernels.Where))
            (ElementConfig(count), count, View(condition), conditionStrides, View(a), aStrides, View(b), bStrides, View(y), shape, rank);
    }

    // ---- reductions ----

    /// <summary>Rows at least this long get a whole group each (inner == 1); shorter ones a thread.</summary>
    private const int GroupPerRowThreshold = 128;

    public void Reduce<TOp>(BufferView x, BufferView y, int outer, int r, int inner) where TOp : struct, IReduceOp
    {
        if (outer == 0 || inner == 0) return;
        if (inner == 1 && r >= GroupPerRowThreshold)
        {
            Launcher(nameof(IlgpuKernels.ReduceRows), typeof(TOp),
                () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(IlgpuKernels.ReduceRows<TOp>))
                (RowConfig(outer), View(x), View(y), r);
            return;
        }
        int chunks = ChunkedReductions ? ReductionChunks(outer * inner, r) : 1;
        if (chunks > 1)
        {
            // Few outputs, long reductions (a bias gradient: 768 sums of 3136): one thread per output would
            // leave the GPU idle. Reduce r in chunks first, (outer, chunks, r / chunks, inner) → (outer, chunks,
            // inner), then the chunks: two passes of the same kernel, in a fixed order.
            lock (launchGate)
            {
                var partials = Scratch((long)outer * chunks * inner);
                ReducePerOutput<TOp>(View(x), partials, outer * chunks, r / chunks, inner);
                ReducePerOutput<TOp>(partials, View(y), outer, chunks, inner);
            }
            return;
        }
        ReducePerOutput<TOp>(View(x), View(y), outer, r, inner);
    }

    private void ReducePerOutput<TOp>(ArrayView<float> x, ArrayView<float> y, int outer, int r, int inner) where TOp : struct, IReduceOp =>
        Launcher(nameof(IlgpuKernels.ReducePerOutput), typeof(TOp),
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, int, int>(IlgpuKernels.ReducePerOutput<TOp>))
            (ElementConfig(outer * inner), outer * inner, x, y, r, inner);

    /// <summary>Whether long reductions with few outputs run in two passes (<see cref="ReductionChunks"/>): on GPUs;
    /// on the CPU accelerator, whose launches cost more than its threads gain, only when a test asks.</summary>
    internal bool ChunkedReductions { get; set; }

    /// <summary>The number of chunks to cut a reduction of length <paramref name="r"/> into so that about 64K
    /// threads work: the largest divisor of r up to that (chunks of at least 16), or 1 when the outputs alone
    /// are enough.</summary>
    internal static int ReductionChunks(int outputs, int r)
    {
        const int targetThreads = 1 << 16, minimumChunk = 16;
        int limit = Math.Min(targetThreads / Math.Max(outputs, 1), r / minimumChunk);
        for (int chunks = limit; chunks > 1; chunks--)
            if (r % chunks == 0) return chunks;
        return 1;
    }

    public void ArgReduce(BufferView x, BufferView indices, int outer, int r, int inner, bool min)
    {
        if (outer == 0 || inner == 0) return;
        if (r == 0) throw new ArgumentException("argmax/argmin over an empty dimension", nameof(r));
        Launcher(nameof(IlgpuKernels.ArgReduce), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<int>, int, int, int>(IlgpuKernels.ArgReduce))
            (ElementConfig(outer * inner), outer * inner, View(x), IntView(indices), r, inner, min ? 1 : 0);
    }

    private KernelConfig RowConfig(int rows) => new(rows, rowGroupSize);

    // ---- linear algebra ----

    /// <summary>Partial results of split GEMMs and reductions; grows to the largest seen. One stream, and each
    /// user queues all its kernels on it under <see cref="launchGate"/>, so reuse is safe.</summary>
    private MemoryBuffer1D<float, Stride1D.Dense>? scratch;

    private ArrayView<float> Scratch(long length)
    {
        if (scratch == null || scratch.Length < length)
        {
            scratch?.Dispose();
            scratch = accelerator.Allocate1D<float>(length);
        }
        return scratch.View.SubView(0, length);
    }

    /// <summary>Shortest K range a split-K group computes: enough steps to hide the partials' extra traffic.</summary>
    internal const int MinSplitDepth = 512;

    public void Gemm(in GemmArgs args)
    {
        if (args.M == 0 || args.N == 0 || args.Batch == 0) return;
        var p = new GemmParams
        {
            TransA = args.A.Transposed ? 1 : 0, TransB = args.B.Transposed ? 1 : 0, M = args.M, N = args.N, K = args.K,
            Lda = args.A.Ld, StrideA = args.A.BatchStride, Ldb = args.B.Ld, StrideB = args.B.BatchStride,
            Ldc = args.C.Ld, StrideC = args.C.BatchStride, Alpha = args.Alpha, Beta = args.Beta, Splits = 1, KChunk = args.K,
        };
        if (args.Accumulation == GemmAccumulation.Float64)
        {
            if (Float64) GemmFloat64<DoubleSum>(args, p);
            else GemmFloat64<FloatFloatProductSum>(args, p);
        }
        else if (smallGroups) Gemm<CpuGemmTile>(args, p);
        else Gemm<GpuGemmTile>(args, p);
    }

    private void GemmFloat64<TSum>(in GemmArgs args, in GemmParams p) where TSum : struct, IProductSum
    {
        int count = args.Batch * args.M * args.N;
        Launcher(nameof(IlgpuGemmKernel.GemmFloat64), typeof(TSum),
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmParams>(
                IlgpuGemmKernel.GemmFloat64<TSum>))
            (ElementConfig(count), count, View(args.A.View), View(args.B.View), View(args.C.View), p);
    }

    private static long Tiles(in GemmParams p, int batch, int tile) => (long)((p.M + tile - 1) / tile) * ((p.N + tile - 1) / tile) * batch;

    /// <summary>The tiled kernel, with K split over several groups when the C tiles alone would leave most
    /// multiprocessors idle (a convolution's weight gradient: a small C, K = batch · pixels).</summary>
    private void Gemm<TTile>(in GemmArgs args, GemmParams p) where TTile : struct, IGemmTile
    {
        long tiles = Tiles(p, args.Batch, IlgpuGemmKernel.TileSize<TTile>());
        int splits = (int)Math.Min(Math.Min(2L * accelerator.NumMultiprocessors / tiles, p.K / MinSplitDepth), 64);
        if (splits < 2)
        {
            TiledGemm<TTile>(args.Batch, View(args.A.View), View(args.B.View), View(args.C.View), p);
            return;
        }
        int chunk = (p.K + splits - 1) / splits;
        chunk = (chunk + IlgpuGemmKernel.TileK - 1) / IlgpuGemmKernel.TileK * IlgpuGemmKernel.TileK;
        p.Splits = (p.K + chunk - 1) / chunk;
        p.KChunk = chunk;
        int size = p.M * p.N, count = args.Batch * size;
        long needed = (long)count * p.Splits;
        lock (launchGate)
        {
            var partials = Scratch(needed);
            TiledGemm<TTile>(args.Batch, View(args.A.View), View(args.B.View), partials,
                p with { Ldc = p.N, StrideC = size, Alpha = 1f, Beta = 0f });
            if (Float64) SumSplits<DoubleSum>(count, partials, View(args.C.View), p);
            else SumSplits<CompensatedSplitSum>(count, partials, View(args.C.View), p);
        }
    }

    private void SumSplits<TSum>(int count, ArrayView<float> partials, ArrayView<float> c, in GemmParams p)
        where TSum : struct, ISplitSum =>
        Launcher(nameof(IlgpuGemmKernel.SumSplits), typeof(TSum),
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, GemmParams>(IlgpuGemmKernel.SumSplits<TSum>))
            (ElementConfig(count), count, partials, c, p);

    private void TiledGemm<TTile>(int batch, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, in GemmParams p)
        where TTile : struct, IGemmTile =>
        Launcher(nameof(IlgpuGemmKernel.Gemm), typeof(TTile),
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmParams>(
                IlgpuGemmKernel.Gemm<TTile>))
            (IlgpuGemmKernel.Config<TTile>(p, batch), a, b, c, p);

    public void Softmax(BufferView x, BufferView y, int rows, int cols)
    {
        if (rows == 0 || cols == 0) return;
        Launcher(nameof(IlgpuKernels.Softmax), null,
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(IlgpuKernels.Softmax))
            (RowConfig(rows), View(x), View(y), cols);
    }

    public void SoftmaxBackward(BufferView y, BufferView dy, BufferView dx, int rows, int cols)
    {
        if (rows == 0 || cols == 0) return;
        Launcher(nameof(IlgpuKernels.SoftmaxBackward), null,
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(IlgpuKernels.SoftmaxBackward))
            (RowConfig(rows), View(y), View(dy), View(dx), cols);
    }

    // ---- group normalisation ----

    public void GroupNormForward(BufferView x, BufferView gamma, BufferView beta, BufferView y, BufferView mean, BufferView rstd,
        int batch, int channels, int spatial, int groups, float eps)
    {
        if (batch == 0 || channels == 0 || spatial == 0) return;
        Launcher(nameof(IlgpuNormKernels.GroupNormForward), null,
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, float>(IlgpuNormKernels.GroupNormForward))
            (RowConfig(batch * groups), View(x), View(gamma), View(beta), View(y), View(mean), View(rstd),
                spatial, groups, channels / groups, eps);
    }

    public void GroupNormBackward(BufferView x, BufferView gamma, BufferView mean, BufferView rstd, BufferView dy,
        BufferView dx, BufferView dgamma, BufferView dbeta, int batch, int channels, int spatial, int groups)
    {
        if (batch == 0 || channels == 0 || spatial == 0) return;
        Launcher(nameof(IlgpuNormKernels.GroupNormBackwardInput), null,
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int>(IlgpuNormKernels.GroupNormBackwardInput))
            (RowConfig(batch * groups), View(x), View(gamma), View(mean), View(rstd), View(dy), View(dx),
                spatial, groups, channels / groups);
        Launcher(nameof(IlgpuNormKernels.GroupNormBackwardAffine), null,
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, int, int>(IlgpuNormKernels.GroupNormBackwardAffine))
            (RowConfig(channels), View(x), View(mean), View(rstd), View(dy), View(dgamma), View(dbeta),
                batch, channels, spatial, groups, channels / groups);
    }

    // ---- fused attention ----

    public bool PrefersFusedAttention => true;

    public void AttentionForward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView logSumExp,
        int bh, int lq, int lk, int d, float scale)
    {
        var p = AttentionParams(lq, lk, d, scale);
        if (bh == 0) return;
        if (smallGroups) AttentionForward<CpuAttentionTile>(q, k, v, o, logSumExp, bh, p);
        else AttentionForward<GpuAttentionTile>(q, k, v, o, logSumExp, bh, p);
    }

    private void AttentionForward<TTile>(BufferView q, BufferView k, BufferView v, BufferView o, BufferView logSumExp, int bh,
        AttentionParams p) where TTile : struct, IAttentionTile =>
        Launcher(nameof(IlgpuAttentionKernels.Forward), typeof(TTile),
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                AttentionParams>(IlgpuAttentionKernels.Forward<TTile>))
            (IlgpuAttentionKernels.ForwardConfig<TTile>(bh, p.Lq), View(q), View(k), View(v), View(o), View(logSumExp), p);

    public void AttentionBackward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView dO, BufferView logSumExp,
        BufferView dq, BufferView dk, BufferView dv, int bh, int lq, int lk, int d, float scale)
    {
        var p = AttentionParams(lq, lk, d, scale);
        if (bh == 0) return;
        if (smallGroups) AttentionBackward<CpuAttentionTile>(q, k, v, o, dO, logSumExp, dq, dk, dv, bh, p);
        else AttentionBackward<GpuAttentionTile>(q, k, v, o, dO, logSumExp, dq, dk, dv, bh, p);
    }

    private void AttentionBackward<TTile>(BufferView q, BufferView k, BufferView v, BufferView o, BufferView dO, BufferView logSumExp,
        BufferView dq, BufferView dk, BufferView dv, int bh, AttentionParams p) where TTile : struct, IAttentionTile
    {
        // dk, dv per key tile and dq per query tile: each output row has one writer, so no atomics.
        Launcher(nameof(IlgpuAttentionKernels.BackwardKeys), typeof(TTile),
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionParams>(IlgpuAttentionKernels.BackwardKeys<TTile>))
            (IlgpuAttentionKernels.BackwardConfig<TTile>(bh, p.Lk), View(q), View(k), View(v), View(o), View(dO), View(logSumExp),
                View(dk), View(dv), p);
        Launcher(nameof(IlgpuAttentionKernels.BackwardQueries), typeof(TTile),
            () => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, AttentionParams>(IlgpuAttentionKernels.BackwardQueries<TTile>))
            (IlgpuAttentionKernels.BackwardConfig<TTile>(bh, p.Lq), View(q), View(k), View(v), View(o), View(dO), View(logSumExp),
                View(dq), p);
    }

    private static AttentionParams AttentionParams(int lq, int lk, int d, float scale)
    {
        if (lq < 1 || lk < 1 || d < 1 || d > IlgpuAttentionKernels.MaxHeadDim)
            throw new ArgumentException(
                $"fused attention needs lq, lk ≥ 1 and 1 ≤ d ≤ {IlgpuAttentionKernels.MaxHeadDim}; got lq {lq}, lk {lk}, d {d}");
        return new AttentionParams { Lq = lq, Lk = lk, D = d, Scale = scale };
    }

    // ---- indexing ----

    public void IndexSelect(BufferView x, BufferView idx, BufferView y, int outer, int n, int k, int inner)
    {
        int count = outer * k * inner;
        if (count == 0) return;
        Launcher(nameof(IlgpuKernels.IndexSelect), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(
                IlgpuKernels.IndexSelect))
            (ElementConfig(count), count, View(x), IntView(idx), View(y), n, k, inner);
    }

    // Every primitive launches its kernel through the same few lines (the loader cached by name, then the arguments).
    public void IndexAdd(BufferView dy, BufferView idx, BufferView dx, int outer, int n, int k, int inner)
    {
        int count = outer * k * inner;
        if (count == 0) return;
        Launcher(nameof(IlgpuKernels.IndexAdd), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(
                IlgpuKernels.IndexAdd))
            (ElementConfig(count), count, View(dy), IntView(idx), View(dx), n, k, inner);
    }

    // ---- convolution lowering ----

    public void Im2Col(BufferView x, BufferView cols, in ConvGeometry g)
    {
        int count = g.Batch * g.ColumnsPerImage;
        if (count == 0) return;
        Launcher(nameof(IlgpuKernels.Im2Col), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, ConvGeometry>(IlgpuKernels.Im2Col))
            (ElementConfig(count), count, View(x), View(cols), g);
    }

    public bool GathersConvPatches => false;

    public void ConvGemm(BufferView a, BufferView x, BufferView c, int m, in ConvGeometry g, bool transposed) =>
        throw new NotSupportedException($"{Info.Name}: convolutions build column matrices here (GathersConvPatches is false)");

    public void Col2Im(BufferView cols, BufferView dx, in ConvGeometry g)
    {
        int count = g.Batch * g.Channels * g.Height * g.Width;
        if (count == 0) return;
        Launcher(nameof(IlgpuKernels.Col2Im), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, ConvGeometry>(IlgpuKernels.Col2Im))
            (ElementConfig(count), count, View(cols), View(dx), g);
    }

    // ---- optimiser and random numbers ----

    public void AdamStep(BufferView p, BufferView g, BufferView m, BufferView v, int n,
        float beta1, float beta2, float eps, float weightDecay, float stepSize, float sqrtBiasCorrection2)
    {
        if (n == 0) return;
        var parameters = new AdamParams
        {
            Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay, StepSize = stepSize,
            SqrtBiasCorrection2 = sqrtBiasCorrection2,
        };
        Launcher(nameof(IlgpuKernels.AdamStep), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamParams>(
                IlgpuKernels.AdamStep))
            (ElementConfig(n), n, View(p), View(g), View(m), View(v), parameters);
    }

    public void FillRandom(BufferView y, int n, ulong seed, ulong counterBase, bool normal)
    {
        if (n == 0) return;
        Launcher(nameof(IlgpuKernels.FillRandom), null,
            () => accelerator.LoadStreamKernel<int, ArrayView<float>, ulong, ulong, int>(IlgpuKernels.FillRandom))
            (ElementConfig(n), n, View(y), seed, counterBase, normal ? 1 : 0);
    }
}
