namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>
/// Size-bucketed reuse of device buffers, so a training step's temporaries come from a free list
/// instead of the driver's malloc. Buckets are powers of two split into quarters (≤ 25 % slack).
/// Thread-safe. Reports bytes in use, peak and cached.
/// </summary>
public sealed class CachingAllocator
{
    private readonly IBackend _backend;
    private readonly Dictionary<int, Stack<DeviceBuffer>> _free = new();
    private readonly object _lock = new();
    private long _inUse, _peak, _cached;

    public CachingAllocator(IBackend backend) => _backend = backend;

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
            if (_free.TryGetValue(bucket, out var stack) && stack.Count > 0)
            {
                var reused = stack.Pop();
                _cached -= 4L * bucket;
                Account(4L * bucket);
                return reused;
            }
        }
        DeviceBuffer buffer;
        try
        {
            buffer = _backend.Allocate(bucket);
        }
        catch (Exception e) when (e is OutOfMemoryException || e.GetType().Name.Contains("OutOfMemory", StringComparison.Ordinal))
        {
            EmptyCache(); // give cached blocks back to the driver and try once more
            buffer = _backend.Allocate(bucket);
        }
        lock (_lock) Account(4L * bucket);
        return buffer;
    }

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
