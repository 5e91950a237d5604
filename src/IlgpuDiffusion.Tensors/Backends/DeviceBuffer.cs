namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>A block of device memory holding <see cref="Length"/> 4-byte elements (float32 or int32).
/// Buffers are owned by a device's caching allocator; kernels see them through <see cref="BufferView"/>.</summary>
public abstract class DeviceBuffer
{
    protected DeviceBuffer(int length) => Length = length;

    public int Length { get; }

    /// <summary>Returns the memory to the driver (or the managed heap). Only the allocator calls this.</summary>
    internal abstract void Release();
}

/// <summary>A buffer and an element offset into it.</summary>
public readonly record struct BufferView(DeviceBuffer Buffer, int Offset)
{
    public BufferView At(int extraOffset) => new(Buffer, Offset + extraOffset);
}
