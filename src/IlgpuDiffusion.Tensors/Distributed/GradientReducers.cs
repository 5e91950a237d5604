using System.Runtime.InteropServices;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>Sums parameter gradients over the ranks of a data-parallel job, in place.</summary>
public interface IGradientReducer : IDisposable
{
    /// <summary>What reduces (for the log): "MPI, host memory" or "NCCL".</summary>
    string Name { get; }

    /// <summary>Replaces every gradient of <paramref name="parameters"/> by its sum over the ranks. Parameters without a
    /// gradient are skipped: every rank runs the same steps, so every rank skips the same ones.</summary>
    void SumGradients(IReadOnlyList<Tensor> parameters);
}

public static class GradientReducers
{
    /// <summary>PyTorch DDP's default bucket (bucket_cap_mb = 25): large enough to amortise a collective's latency,
    /// small enough to overlap one bucket's transfer with the next one's copy.</summary>
    public const int BucketBytes = 25 << 20;

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

    /// <summary>The gradients in the order the backward pass finishes them (the last layers first), split into buckets
    /// of at most <see cref="BucketBytes"/> (a larger gradient is a bucket of its own).</summary>
    internal static List<List<Tensor>> Buckets(IReadOnlyList<Tensor> parameters)
    {
        var buckets = new List<List<Tensor>>();
        long bytes = 0;
        for (int i = parameters.Count - 1; i >= 0; i--)
        {
            if (parameters[i].Grad is not { } grad) continue;
            if (buckets.Count == 0 || bytes + grad.Count * 4L > BucketBytes)
            {
                buckets.Add([]);
                bytes = 0;
            }
            buckets[^1].Add(grad);
            bytes += grad.Count * 4L;
        }
        return buckets;
    }
}

/// <summary>
/// The default reduction: each bucket of gradients is copied into a pinned host buffer and summed with MPI_Iallreduce;
/// while one bucket is in flight the next is copied, then the sums are copied back. Works from every executor.
/// </summary>
public sealed class HostGradientReducer(MpiProcessGroup group) : IGradientReducer
{
    private readonly List<float[]> _buffers = [];

    public string Name => "MPI, host memory";

    public void SumGradients(IReadOnlyList<Tensor> parameters)
    {
        var buckets = GradientReducers.Buckets(parameters);
        var requests = new int[buckets.Count];
        for (int b = 0; b < buckets.Count; b++)
        {
            int count = buckets[b].Sum(g => g.Count);
            var buffer = Buffer(b, count);
            int offset = 0;
            foreach (var grad in buckets[b])
            {
                grad.Device.Backend.Download(grad.View, buffer.AsSpan(offset, grad.Count));
                offset += grad.Count;
            }
            requests[b] = group.StartAllReduceSum(buffer, count);
        }
        for (int b = 0; b < buckets.Count; b++)
        {
            group.Wait(requests[b], "gradient all-reduce");
            int offset = 0;
            foreach (var grad in buckets[b])
            {
                grad.CopyFrom(_buffers[b].AsSpan(offset, grad.Count));
                offset += grad.Count;
            }
        }
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

    public void SumGradients(IReadOnlyList<Tensor> parameters)
    {
        IntPtr stream = IntPtr.Zero;
        foreach (var bucket in GradientReducers.Buckets(parameters))
        {
            NcclNative.Check(NcclNative.ncclGroupStart(), "ncclGroupStart");
            foreach (var grad in bucket)
            {
                var (s, address) = _backend.CudaHandles(grad.View) ?? throw new InvalidOperationException("gradient is not in CUDA memory");
                stream = s;
                int result = NcclNative.ncclAllReduce(address, address, (nuint)grad.Count, NcclNative.Float32, NcclNative.Sum, _comm, s);
                NcclNative.Check(result, "ncclAllReduce");
            }
            NcclNative.Check(NcclNative.ncclGroupEnd(), "ncclGroupEnd");
        }
        if (stream != IntPtr.Zero) WaitForStream(stream);
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
