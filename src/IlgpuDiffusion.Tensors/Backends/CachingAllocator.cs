using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>
/// Size-bucketed reuse of device buffers, so a training step's temporaries come from a free list
/// instead of the driver's malloc. Buckets are powers of two split into quarters (≤ 25 % slack); when a request's
/// bucket is empty, the smallest free buffer up to twice its size serves it (best fit), so memory freed in one size
/// serves the next size instead of staying cached beside a new allocation.
/// Thread-safe. Reports bytes in use, peak and cached. The one place buffers are allocated, so the one place
/// that reports a full device, as <see cref="DeviceOutOfMemoryException"/>.
/// </summary>
public sealed class CachingAllocator
{
    private readonly string _device;
    private readonly Func<int, DeviceBuffer> _allocate;
    private readonly SortedDictionary<int, Stack<DeviceBuffer>> _free = new();
    private readonly object _lock = new();
    private long _inUse, _peak, _cached;

    public CachingAllocator(IBackend backend) : this(backend.Info.Name, backend.Allocate) { }

    /// <summary>An allocator over <paramref name="allocate"/> (an executor's <see cref="IBackend.Allocate"/>).</summary>
    internal CachingAllocator(string device, Func<int, DeviceBuffer> allocate)
    {
        _device = device;
        _allocate = allocate;
    }

    public long BytesInUse { get { lock (_lock) return _inUse; } }
    public long PeakBytesInUse { get { lock (_lock) return _peak; } }
    public long BytesCached { get { lock (_lock) return _cached; } }

    public void ResetPeak() { lock (_lock) _peak = _inUse; }

    internal static int BucketLength(int length)
    {
        if (length <= 256) return Math.Max(1, (length + 15) & ~15);
        int power = 1 << (31 - int.LeadingZeroCount(length - 1)); // largest power of two below length
        int quarter = power / 4;
        long rounded = (long)(length + quarter - 1) / quarter * quarter;
        return (int)Math.Min(rounded, int.MaxValue);
    }

    public DeviceBuffer Rent(int length)
    {
        int bucket = BucketLength(length);
        lock (_lock)
        {
            if (TakeFree(bucket) is { } reused)
            {
                _cached -= 4L * reused.Length;
                Account(4L * reused.Length);
                return reused;
            }
        }
        var buffer = Allocate(bucket);
        lock (_lock) Account(4L * bucket);
        return buffer;
    }

    /// <summary>The smallest free buffer of at least <paramref name="bucket"/> and at most twice that many elements.</summary>
    private DeviceBuffer? TakeFree(int bucket)
    {
        if (_free.TryGetValue(bucket, out var exact) && exact.Count > 0) return exact.Pop();
        long largest = 2L * bucket;
        foreach (var (length, stack) in _free)
        {
            if (length > largest) break;
            if (length > bucket && stack.Count > 0) return stack.Pop();
        }
        return null;
    }

    /// <summary>A new buffer from the executor. When the device is full, the cached free buffers go back to the driver
    /// and the allocation is tried once more, as PyTorch's caching allocator does, before it reports running out.</summary>
    private DeviceBuffer Allocate(int bucket)
    {
        try
        {
            return _allocate(bucket);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            EmptyCache();
        }
        try
        {
            return _allocate(bucket);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw new DeviceOutOfMemoryException(_device, 4L * bucket, BytesInUse, BytesCached, e);
        }
    }

    /// <summary>What the executors throw when an allocation finds no room: the managed executor (<c>new float[n]</c>) and
    /// ILGPU's CPU accelerator (<c>Marshal.AllocHGlobal</c>) an <see cref="OutOfMemoryException"/>; ILGPU's CUDA accelerator
    /// a <see cref="CudaException"/> for cuMemAlloc's CUDA_ERROR_OUT_OF_MEMORY; its OpenCL accelerator a
    /// <see cref="CLException"/> for clCreateBuffer's allocation failures.</summary>
    internal static bool IsOutOfMemory(Exception e) => e switch
    {
        OutOfMemoryException => true,
        CudaException cuda => cuda.Error == nameof(CudaError.CUDA_ERROR_OUT_OF_MEMORY),
        CLException cl => cl.Error is CLError.CL_MEM_OBJECT_ALLOCATION_FAILURE or CLError.CL_OUT_OF_RESOURCES
            or CLError.CL_OUT_OF_HOST_MEMORY,
        _ => false,
    };

    public void Return(DeviceBuffer buffer)
    {
        lock (_lock)
        {
            if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new Stack<DeviceBuffer>();
            stack.Push(buffer);
            _inUse -= 4L * buffer.Length;
            _cached += 4L * buffer.Length;
        }
    }

    /// <summary>Releases every cached (unused) buffer to the driver.</summary>
    public void EmptyCache()
    {
        List<DeviceBuffer> release;
        lock (_lock)
        {
            release = _free.Values.SelectMany(s => s).ToList();
            _free.Clear();
            _cached = 0;
        }
        foreach (var b in release) b.Release();
    }

    private void Account(long bytes)
    {
        _inUse += bytes;
        if (_inUse > _peak) _peak = _inUse;
    }
}
