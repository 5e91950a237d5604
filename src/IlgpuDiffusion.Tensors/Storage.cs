using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

/// <summary>A reference-counted device buffer shared by a tensor and its views (reshape, detach).
/// The last release hands the buffer back to the device's caching allocator.</summary>
internal sealed class Storage
{
    private int _references = 1;

    public Storage(Device device, int length)
    {
        Device = device;
        Buffer = device.Allocator.Rent(Math.Max(length, 1));
    }

    public Device Device { get; }
    public DeviceBuffer Buffer { get; }
    public bool IsReleased => Volatile.Read(ref _references) <= 0;
    /// <summary>Whether another tensor object (a view, an alias) holds this memory too.</summary>
    public bool IsShared => Volatile.Read(ref _references) > 1;

    public Storage AddReference()
    {
        if (Interlocked.Increment(ref _references) <= 1)
            throw new ObjectDisposedException(nameof(Tensor), "the tensor's memory was already released");
        return this;
    }

    public void Release()
    {
        int left = Interlocked.Decrement(ref _references);
        if (left == 0) Device.Allocator.Return(Buffer);
    }
}
