namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>Host-side simplification of strided iterations, so kernels do fewer divisions.</summary>
internal static class StridedLayout
{
    public static int Count(in Dim6 shape, int rank)
    {
        int count = 1;
        for (int d = 0; d < rank; d++) count *= shape[d];
        return count;
    }

    /// <summary>Row-major strides of a dense tensor of <paramref name="shape"/>.</summary>
    public static Dim6 Contiguous(in Dim6 shape, int rank)
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

    public static int Collapse(ref Dim6 shape, int rank, ref Dim6 a, ref Dim6 b)
    {
        Dim6 unused = default;
        return Collapse(ref shape, rank, ref a, ref b, ref unused);
    }

    /// <summary>Drops size-1 dimensions and merges neighbours that are contiguous in every operand
    /// (an unused operand is all zeros, which never blocks a merge of its own); the iteration order
    /// and every offset stay the same. Returns the new rank, at least 1.</summary>
    public static int Collapse(ref Dim6 shape, int rank, ref Dim6 a, ref Dim6 b, ref Dim6 c)
    {
        Dim6 newShape = default, newA = default, newB = default, newC = default;
        int newRank = 0;
        for (int d = 0; d < rank; d++)
        {
            int size = shape[d];
            if (size == 1) continue;
            int p = newRank - 1;
            if (p >= 0 && newA[p] == a[d] * size && newB[p] == b[d] * size && newC[p] == c[d] * size)
            {
                newShape[p] *= size;
                newA[p] = a[d];
                newB[p] = b[d];
                newC[p] = c[d];
                continue;
            }
            newShape[newRank] = size;
            newA[newRank] = a[d];
            newB[newRank] = b[d];
            newC[newRank] = c[d];
            newRank++;
        }
        if (newRank == 0)
        {
            // A single element: one dimension of size 1 at offset 0.
            newShape[0] = 1;
            newRank = 1;
        }
        shape = newShape;
        a = newA;
        b = newB;
        c = newC;
        return newRank;
    }
}
