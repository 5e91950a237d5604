using ILGPU;
using ILGPU.Runtime;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>Device memory of one ILGPU accelerator. Int32 data shares these float buffers and is
/// reinterpreted with <see cref="ArrayView{T}.Cast{TOther}"/> where a kernel needs it.</summary>
internal sealed class IlgpuBuffer : DeviceBuffer
{
    public IlgpuBuffer(MemoryBuffer1D<float, Stride1D.Dense> memory) : base((int)memory.Length) => Memory = memory;

    public MemoryBuffer1D<float, Stride1D.Dense> Memory { get; }

    /// <summary>The elements from <paramref name="offset"/> to the end of the buffer.</summary>
    public ArrayView<float> ViewFrom(int offset) => Memory.View.AsContiguous().SubView(offset, Length - offset);

    internal override void Release() => Memory.Dispose();
}
