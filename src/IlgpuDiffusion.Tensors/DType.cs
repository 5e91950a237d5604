namespace IlgpuDiffusion.Tensors;

/// <summary>Element type of a tensor. Buffers hold 4-byte elements today; the size field is where
/// 2-byte types (bf16, f16) will plug in.</summary>
public enum DType
{
    Float32,
    Int32,
}

public static class DTypeExtensions
{
    public static int SizeInBytes(this DType dtype) => dtype switch
    {
        DType.Float32 or DType.Int32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}
