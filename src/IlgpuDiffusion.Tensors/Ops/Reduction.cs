using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

// Reductions over chosen dimensions; each backward broadcasts the output gradient back.
public sealed partial class Tensor
{
    /// <summary>Sum over <paramref name="dims"/> (all when empty).</summary>
    public Tensor Sum(int[]? dims = null, bool keepDim = false) => ReduceDims<SumReduce>("sum", dims, keepDim, mean: false);

    public Tensor Sum(int dim, bool keepDim = false) => Sum([dim], keepDim);

    /// <summary>Mean over <paramref name="dims"/> (all when empty).</summary>
    public Tensor Mean(int[]? dims = null, bool keepDim = false) => ReduceDims<SumReduce>("mean", dims, keepDim, mean: true);

    public Tensor Mean(int dim, bool keepDim = false) => Mean([dim], keepDim);

    /// <summary>Maximum over <paramref name="dims"/> (amax semantics: tied maxima share the gradient equally).</summary>
    public Tensor Max(int[]? dims = null, bool keepDim = false) => ReduceDims<MaxReduce>("amax", dims, keepDim, mean: false);

    public Tensor Max(int dim, bool keepDim = false) => Max([dim], keepDim);

    /// <summary>Minimum over <paramref name="dims"/> (amin semantics).</summary>
    public Tensor Min(int[]? dims = null, bool keepDim = false) => ReduceDims<MinReduce>("amin", dims, keepDim, mean: false);

    /// <summary>Index (int32) of the largest element along <paramref name="dim"/>; first on ties. No gradient.</summary>
    public Tensor ArgMax(int dim, bool keepDim = false) => ArgReduce(dim, keepDim, min: false);

    /// <summary>Index (int32) of the smallest element along <paramref name="dim"/>; first on ties. No gradient.</summary>
    public Tensor ArgMin(int dim, bool keepDim = false) => ArgReduce(dim, keepDim, min: true);

    private Tensor ArgReduce(int dim, bool keepDim, bool min)
    {
        RequireDType(DType.Float32, min ? "argmin" : "argmax");
        int d = NormaliseDim(dim, Rank);
        if (_shape[d] == 0)
            throw new ArgumentException($"{(min ? "argmin" : "argmax")} over an empty dimension of shape {ShapeString(_shape)}");
        var y = new Tensor(Device, ReducedShape([d], keepDim), DType.Int32);
        Backend.ArgReduce(View, y.View, Layout.Product(_shape, 0, d), _shape[d], Layout.Product(_shape, d + 1), min);
        return y;
    }

    private int[] ReducedShape(IReadOnlyCollection<int> dims, bool keepDim)
    {
        var shape = new List<int>();
        for (int d = 0; d < Rank; d++)
            if (!dims.Contains(d)) shape.Add(_shape[d]);
            else if (keepDim) shape.Add(1);
        return shape.ToArray();
    }

    private SortedSet<int> NormaliseDims(int[]? dims)
    {
        var set = new SortedSet<int>();
        if (dims == null || dims.Length == 0) { for (int d = 0; d < Rank; d++) set.Add(d); }
        else foreach (int d in dims)
            if (!set.Add(NormaliseDim(d, Rank)))
                throw new ArgumentException($"dimension {d} repeated in reduction over shape {ShapeString(_shape)}");
        return set;
    }

    private Tensor ReduceDims<TOp>(string op, int[]? dims, bool keepDim, bool mean) where TOp : struct, IReduceOp
    {
        RequireDType(DType.Float32, op);
        var set = NormaliseDims(dims);
        int[] keptShape = ReducedShape(set, keepDim: true);
        int reducedCount = Count / Math.Max(1, Layout.Product(keptShape));

        // Reduce runs of adjacent dims one (outer, r, inner) call at a time, last run first.
        var current = this;
        var runs = Runs(set);
        var working = (int[])_shape.Clone();
        for (int i = runs.Count - 1; i >= 0; i--)
        {
            var (first, last) = runs[i];
            int outer = Layout.Product(working, 0, first);
            int r = Layout.Product(working, first, last + 1);
            int inner = Layout.Product(working, last + 1);
            for (int d = first; d <= last; d++) working[d] = 1;
            var next = new Tensor(Device, (int[])working.Clone(), DType.Float32);
            if (next.Count > 0) Backend.Reduce<TOp>(current.View, next.View, outer, r, inner);
            if (current != this) current.Dispose();
            current = next;
        }
        if (current == this) current = Alias((int[])_shape.Clone()); // no dims to reduce (rank 0)
        if (mean && current.Count > 0)
            Backend.Unary<AffineOp>(current.View, current.View, current.Count, 1f / Math.Max(1, reducedCount), 0f);
        var y = keepDim ? current : current.ViewAs(ReducedShape(set, keepDim: false));
        if (y != current) current.Dispose();

        var x = this;
        bool sum = typeof(TOp) == typeof(SumReduce);
        return Record(y, op, [x], sum ? [] : [x, y], g =>
        {
            var gk = g.Reshape(keptShape);
            if (sum)
                return [mean ? gk.Expand(x._shape).Mul(1f / Math.Max(1, reducedCount)) : gk.Expand(x._shape)];
            // amax/amin: the gradient is shared by the elements equal to the extreme value
            var yk = y.Reshape(keptShape);
            var mask = x.Eq(yk);
            var share = mask.Sum(set.ToArray(), keepDim: true);
            return [mask.Mul(gk.Div(share))];
        });
    }

    private static List<(int First, int Last)> Runs(SortedSet<int> dims)
    {
        var runs = new List<(int, int)>();
        foreach (int d in dims)
            if (runs.Count > 0 && runs[^1].Item2 == d - 1) runs[^1] = (runs[^1].Item1, d);
            else runs.Add((d, d));
        return runs;
    }

    /// <summary>Sums a broadcast gradient back to <paramref name="shape"/> (the inverse of broadcasting).</summary>
    internal Tensor SumTo(IReadOnlyList<int> shape)
    {
        if (_shape.AsSpan().SequenceEqual(shape as int[] ?? shape.ToArray())) return this;
        int lead = Rank - shape.Count;
        var dims = new List<int>();
        for (int d = 0; d < Rank; d++)
            if (d < lead || (shape[d - lead] == 1 && _shape[d] != 1)) dims.Add(d);
        var summed = dims.Count > 0 ? Sum(dims.ToArray(), keepDim: true) : this;
        return summed.Reshape(shape.ToArray());
    }
}
