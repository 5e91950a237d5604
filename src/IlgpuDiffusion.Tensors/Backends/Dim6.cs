namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>Up to six sizes or strides, passed by value into kernels (ILGPU needs unmanaged, fixed-size
/// arguments). Strided kernels iterate over a shape of this rank; unused trailing entries are 1 / 0.</summary>
public struct Dim6
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;

    public int this[int i]
    {
        readonly get => i switch { 0 => D0, 1 => D1, 2 => D2, 3 => D3, 4 => D4, _ => D5 };
        set
        {
            switch (i)
            {
                case 0: D0 = value; break;
                case 1: D1 = value; break;
                case 2: D2 = value; break;
                case 3: D3 = value; break;
                case 4: D4 = value; break;
                default: D5 = value; break;
            }
        }
    }

    public static Dim6 From(ReadOnlySpan<int> values)
    {
        if (values.Length > MaxRank) throw new ArgumentException($"rank {values.Length} exceeds the supported {MaxRank}");
        var d = new Dim6();
        for (int i = 0; i < values.Length; i++) d[i] = values[i];
        return d;
    }

    /// <summary>Number of elements of <paramref name="shape"/> of rank <paramref name="rank"/>.</summary>
    public static int Count(in Dim6 shape, int rank)
    {
        int count = 1;
        for (int d = 0; d < rank; d++) count *= shape[d];
        return count;
    }

    /// <summary>Row-major strides of a dense tensor of <paramref name="shape"/>.</summary>
    public static Dim6 ContiguousStrides(in Dim6 shape, int rank)
    {
        var strides = new Dim6();
        int stride = 1;
        for (int d = rank - 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride *= shape[d];
        }
        return strides;
    }

    /// <summary>Offset of the element with linear (row-major) index <paramref name="linear"/> in
    /// <paramref name="shape"/> of rank <paramref name="rank"/>, under <paramref name="strides"/>.</summary>
    public static int Offset(int linear, in Dim6 shape, in Dim6 strides, int rank)
    {
        int offset = 0;
        for (int d = rank - 1; d >= 0; d--)
        {
            int size = shape[d];
            int idx = linear % size;
            linear /= size;
            offset += idx * strides[d];
        }
        return offset;
    }
}
