namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>Host memory for the managed executor: a plain float array (int32 data is reinterpreted).</summary>
public sealed class CpuBuffer : DeviceBuffer
{
    public CpuBuffer(int length) : base(length) => Data = GC.AllocateUninitializedArray<float>(length);

    public float[] Data { get; }

    internal override void Release() { } // the garbage collector owns managed arrays
}
