namespace IlgpuDiffusion.Tensors.IO;

/// <summary>A tensor in host memory, independent of any device: what weight files are read into and
/// written from. Row-major; exactly one of <see cref="Floats"/> and <see cref="Ints"/> is set,
/// according to <see cref="DType"/>.</summary>
public sealed class HostTensor
{
    public int[] Shape { get; }
    public DType DType { get; }
    public float[]? Floats { get; }
    public int[]? Ints { get; }
    public long ElementCount { get; }

    private HostTensor(int[] shape, DType dtype, float[]? floats, int[]? ints, long dataLength)
    {
        ElementCount = CheckedElementCount(shape);
        if (ElementCount != dataLength)
        {
            throw new ArgumentException(
                $"data has {dataLength} elements but shape [{string.Join(", ", shape)}] needs {ElementCount}",
                nameof(shape));
        }
        Shape = (int[])shape.Clone();
        DType = dtype;
        Floats = floats;
        Ints = ints;
    }

    public static HostTensor FromFloats(int[] shape, float[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        return new HostTensor(shape, DType.Float32, data, null, data.LongLength);
    }

    public static HostTensor FromInts(int[] shape, int[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        return new HostTensor(shape, DType.Int32, null, data, data.LongLength);
    }

    /// <summary>Product of the dimensions (1 for the scalar shape []); throws on a negative
    /// dimension or an overflow.</summary>
    public static long CheckedElementCount(IReadOnlyList<int> shape)
    {
        long count = 1;
        foreach (int dim in shape)
        {
            if (dim < 0)
            {
                throw new ArgumentException($"negative dimension {dim} in shape [{string.Join(", ", shape)}]",
                    nameof(shape));
            }
            count = checked(count * dim);
        }
        return count;
    }

    public override string ToString() => $"HostTensor({DType}, [{string.Join(", ", Shape)}])";
}
