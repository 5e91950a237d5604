namespace IlgpuDiffusion.Tensors;

/// <summary>A device had no room for a buffer, even after its caching allocator gave the cached free buffers back:
/// how the engine reports running out of device memory on every executor. The executor's own exception is the
/// inner exception.</summary>
public sealed class DeviceOutOfMemoryException(string device, long requestedBytes, long bytesInUse, long bytesCached, Exception inner)
    : Exception($"{device} is out of memory: allocating {MiB(requestedBytes)} with {MiB(bytesInUse)} in use by tensors "
        + $"and {MiB(bytesCached)} cached", inner)
{
    public string Device { get; } = device;
    public long RequestedBytes { get; } = requestedBytes;
    /// <summary>Bytes the allocator had handed out (live tensors) when the allocation failed.</summary>
    public long BytesInUse { get; } = bytesInUse;
    /// <summary>Bytes the allocator held free for reuse when the allocation failed.</summary>
    public long BytesCached { get; } = bytesCached;

    private static string MiB(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MiB";
}
