namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>Host memory for the managed executor: a plain float array (int32 data is reinterpreted).</summary>
public sealed class CpuBuffer : DeviceBuffer
{
    public CpuBuffer(int length) : this(GC.AllocateUninitializedArray<float>(length)) { }

    /// <summary>A buffer over an existing array (a primitive's pooled temporaries).</summary>
    internal CpuBuffer(float[] data) : base(data.Length) => Data = data;

    public float[] Data { get; }

    internal override void Release() { } // the garbage collector owns managed arrays
}
