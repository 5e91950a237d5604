using System.Runtime.InteropServices;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>Sums parameter gradients over the ranks, in place, bucket by bucket (<see cref="GradientBuckets"/> decides when
/// each bucket starts). Every rank starts the same buckets in the same order.</summary>
public interface IGradientReducer : IDisposable
{
    /// <summary>What reduces (for the log): "MPI, host memory" or "NCCL".</summary>
    string Name { get; }

    /// <summary>Starts summing <paramref name="gradients"/> (final ones: nothing changes them before <see cref="Finish"/>).</summary>
    void Start(IReadOnlyList<Tensor> gradients);

    /// <summary>Lets started sums advance without waiting for them (MPI advances its non-blocking collectives only inside
    /// MPI calls); cheap enough to call after every gradient of a backward pass.</summary>
    void Progress();

    /// <summary>Waits for every started sum; then each gradient holds its sum over the ranks.</summary>
    void Finish();
}

public static class GradientReducers
{
    /// <summary>The reducer of <paramref name="backend"/> ("auto", "mpi" or "nccl") for gradients on
    /// <paramref name="device"/>. "auto" takes NCCL on a CUDA device when libnccl.so.2 loads, else MPI through host memory;
    /// <paramref name="note"/> says why NCCL was not taken, when it was not.</summary>
    public static IGradientReducer Create(string backend, MpiProcessGroup group, Device device, out string? note)
    {
        note = null;
        bool cuda = CudaBackend(device) != null;
        switch (backend)
        {
            case "mpi":
                return new HostGradientReducer(group);
            case "nccl":
                if (!cuda) throw new ArgumentException($"--dist-backend nccl needs a CUDA device (--device cuda), not {device.Name}");
                if (!NcclNative.TryLoad()) throw new DistributedException(NcclNative.MissingMessage + " (or use --dist-backend mpi)");
                return new NcclGradientReducer(group, device);
            case "auto":
                if (cuda && NcclNative.TryLoad()) return new NcclGradientReducer(group, device);
                if (cuda) note = NcclNative.MissingMessage + "; gradients go through host memory over MPI";
                return new HostGradientReducer(group);
            default:
                throw new ArgumentException($"--dist-backend {backend}: expected auto, mpi or nccl");
        }
    }

    internal static IlgpuBackend? CudaBackend(Device device)
    {
        var backend = device.Backend is ProfilingBackend profiling ? profiling.Inner : device.Backend;
        return backend is IlgpuBackend ilgpu && device.Name.StartsWith("cuda", StringComparison.Ordinal) ? ilgpu : null;
    }
}

/// <summary>
/// The default reduction: each bucket of gradients is copied into a pinned host buffer and summed with MPI_Iallreduce
/// while the backward pass goes on; the sums are copied back when the pass is done. Works from every executor.
/// </summary>
public sealed class HostGradientReducer(MpiProcessGroup group) : IGradientReducer
{
    private readonly List<float[]> _buffers = [];
    private readonly List<(IReadOnlyList<Tensor> Gradients, int Request)> _started = [];
    private int _completed; // the first started sums that MPI reported complete

    public string Name => "MPI, host memory";

    public void Start(IReadOnlyList<Tensor> gradients)
    {
        int count = gradients.Sum(g => g.Count);
        var buffer = Buffer(_started.Count, count);
        int offset = 0;
        foreach (var grad in gradients)
        {
            grad.Device.Backend.Download(grad.View, buffer.AsSpan(offset, grad.Count));
            offset += grad.Count;
        }
        _started.Add((gradients, group.StartAllReduceSum(buffer, count)));
    }

    public void Progress()
    {
        while (_completed < _started.Count && group.Test(_started[_completed].Request, "gradient all-reduce")) _completed++;
    }

    public void Finish()
    {
        for (int b = 0; b < _started.Count; b++)
        {
            var (gradients, request) = _started[b];
            if (b >= _completed) group.Wait(request, "gradient all-reduce");
            int offset = 0;
            foreach (var grad in gradients)
            {
                grad.CopyFrom(_buffers[b].AsSpan(offset, grad.Count));
                offset += grad.Count;
            }
        }
        _started.Clear();
        _completed = 0;
    }

    public void Dispose() => _buffers.Clear();

    /// <summary>Bucket <paramref name="index"/>'s pinned buffer (MPI reads it after the call returns), kept between steps.</summary>
    private float[] Buffer(int index, int count)
    {
        if (index == _buffers.Count) _buffers.Add([]);
        if (_buffers[index].Length < count) _buffers[index] = GC.AllocateUninitializedArray<float>(count, pinned: true);
        return _buffers[index];
    }
}

/// <summary>
/// NCCL on CUDA: the gradients are summed in device memory on the stream the kernels run on (no host copy), one
/// ncclAllReduce per gradient, a bucket per NCCL group call. The communicator is bootstrapped over MPI (rank 0's
/// unique id is broadcast). The reducer then polls the stream until the sums are done, checking NCCL's asynchronous
/// error and the group's timeout, so a dead peer ends the step with an error (the communicator is aborted) instead of
/// a hang. Untested here: no NCCL on the development machine.
/// </summary>
public sealed class NcclGradientReducer : IGradientReducer
{
    private readonly MpiProcessGroup _group;
    private readonly IlgpuBackend _backend;
    private IntPtr _comm;
    private IntPtr _stream; // where the started sums run

    public NcclGradientReducer(MpiProcessGroup group, Device device)
    {
        _group = group;
        _backend = GradientReducers.CudaBackend(device) ?? throw new ArgumentException($"NCCL needs a CUDA device, not {device.Name}");
        var id = new NcclNative.UniqueId();
        Span<byte> bytes = MemoryMarshal.AsBytes(new Span<NcclNative.UniqueId>(ref id));
        if (group.Rank == 0) NcclNative.Check(NcclNative.ncclGetUniqueId(out id), "ncclGetUniqueId");
        group.Broadcast(bytes);
        NcclNative.Check(NcclNative.ncclCommInitRank(out _comm, group.Size, id, group.Rank), "ncclCommInitRank");
    }

    public string Name => "NCCL";

    public void Start(IReadOnlyList<Tensor> gradients)
    {
        // enqueued on the stream behind the kernels that computed the gradients
        NcclNative.Check(NcclNative.ncclGroupStart(), "ncclGroupStart");
        foreach (var grad in gradients)
        {
            var (stream, address) = _backend.CudaHandles(grad.View)
                ?? throw new InvalidOperationException("gradient is not in CUDA memory");
            _stream = stream;
            int result = NcclNative.ncclAllReduce(address, address, (nuint)grad.Count, NcclNative.Float32, NcclNative.Sum, _comm, stream);
            NcclNative.Check(result, "ncclAllReduce");
        }
        NcclNative.Check(NcclNative.ncclGroupEnd(), "ncclGroupEnd");
    }

    public void Progress() { } // NCCL advances on its own

    public void Finish()
    {
        if (_stream != IntPtr.Zero) WaitForStream(_stream);
        _stream = IntPtr.Zero;
    }

    public void Dispose()
    {
        if (_comm == IntPtr.Zero) return;
        NcclNative.ncclCommDestroy(_comm);
        _comm = IntPtr.Zero;
    }

    private void WaitForStream(IntPtr stream)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            int state = NcclNative.cuStreamQuery(stream);
            if (state == NcclNative.CudaSuccess) return;
            if (state != NcclNative.CudaNotReady)
                throw new DistributedException($"rank {_group.Rank}: CUDA error {state} during NCCL all-reduce");
            NcclNative.Check(NcclNative.ncclCommGetAsyncError(_comm, out int asyncError), "ncclCommGetAsyncError");
            if (asyncError != NcclNative.Success) Fail($"NCCL all-reduce failed: {NcclNative.ErrorText(asyncError)}");
            if (watch.Elapsed > _group.Timeout)
                Fail($"NCCL all-reduce did not complete within {_group.Timeout.TotalSeconds:0.#} s: another rank stopped or hangs");
            Thread.Sleep(1);
        }
    }

    private void Fail(string message)
    {
        NcclNative.ncclCommAbort(_comm);
        _comm = IntPtr.Zero;
        throw new DistributedException($"rank {_group.Rank}: {message}");
    }
}
