using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

/// <summary>Shape arithmetic shared by the ops: contiguous strides, NumPy broadcasting, and merging of
/// dimensions that are laid out back to back, so kernels see the smallest rank (and the CPU executor its
/// long contiguous rows).</summary>
internal static class Layout
{
    public static int[] ContiguousStrides(IReadOnlyList<int> shape)
    {
        var strides = new int[shape.Count];
        int s = 1;
        for (int d = shape.Count - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
        return strides;
    }

    public static int Product(IReadOnlyList<int> shape, int from = 0, int to = -1)
    {
        if (to < 0) to = shape.Count;
        int p = 1;
        for (int d = from; d < to; d++) p *= shape[d];
        return p;
    }

    /// <summary>The NumPy broadcast of two shapes, or an error naming the op and both shapes.</summary>
    public static int[] Broadcast(IReadOnlyList<int> a, IReadOnlyList<int> b, string op)
    {
        int rank = Math.Max(a.Count, b.Count);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Count) >= 0 ? a[i - (rank - a.Count)] : 1;
            int db = i - (rank - b.Count) >= 0 ? b[i - (rank - b.Count)] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException(
                    $"{op}: shapes {Tensor.ShapeString(a)} and {Tensor.ShapeString(b)} cannot be broadcast together");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Strides that read a contiguous tensor of <paramref name="shape"/> as if broadcast to <paramref name="target"/>
    /// (0 on broadcast dims).</summary>
    public static int[] BroadcastStrides(IReadOnlyList<int> shape, IReadOnlyList<int> target)
    {
        var own = ContiguousStrides(shape);
        var strides = new int[target.Count];
        int lead = target.Count - shape.Count;
        for (int d = lead; d < target.Count; d++)
            strides[d] = shape[d - lead] == 1 ? 0 : own[d - lead];
        return strides;
    }

    /// <summary>
    /// Drops size-1 dimensions and merges neighbours that every stride set walks contiguously, so executors
    /// iterate over as few dimensions as possible (they take shapes as given). Returns the reduced shape and
    /// strides as <see cref="Dim6"/> values and the rank, at least 1.
    /// </summary>
    public static (Dim6 Shape, Dim6[] Strides, int Rank) Collapse(IReadOnlyList<int> shape, params int[][] strides)
    {
        var dims = new List<int>();
        var st = strides.Select(_ => new List<int>()).ToArray();
        for (int d = 0; d < shape.Count; d++)
        {
            if (shape[d] == 1) continue;
            int last = dims.Count - 1;
            bool merge = last >= 0;
            for (int k = 0; k < strides.Length && merge; k++)
                merge = st[k][last] == strides[k][d] * shape[d];
            if (merge)
            {
                dims[last] *= shape[d];
                for (int k = 0; k < strides.Length; k++) st[k][last] = strides[k][d];
            }
            else
            {
                dims.Add(shape[d]);
                for (int k = 0; k < strides.Length; k++) st[k].Add(strides[k][d]);
            }
        }
        if (dims.Count == 0)
        {
            // a single element: one dimension of size 1
            dims.Add(1);
            foreach (var s in st) s.Add(1);
        }
        if (dims.Count > Dim6.MaxRank)
            throw new NotSupportedException($"a strided access over shape {Tensor.ShapeString(shape)} needs {dims.Count} dimensions; " +
                $"at most {Dim6.MaxRank} are supported");
        return (Dim6.From(dims.ToArray()), st.Select(s => Dim6.From(s.ToArray())).ToArray(), dims.Count);
    }

    /// <summary>Strided copy through <see cref="IBackend.StridedCopy"/> after collapsing.</summary>
    public static void Copy(IBackend backend, BufferView source, int[] sourceStrides, BufferView destination, int[] destinationStrides,
        IReadOnlyList<int> shape)
    {
        var (s, st, rank) = Collapse(shape, sourceStrides, destinationStrides);
        backend.StridedCopy(source, st[0], destination, st[1], s, rank);
    }
}
