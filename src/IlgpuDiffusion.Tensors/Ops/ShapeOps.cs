using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

// Views and data movement: reshape, permute/transpose, expand, concat, slice/chunk.
public sealed partial class Tensor
{
    /// <summary>Same memory, new shape (one dimension may be −1), outside the graph.</summary>
    internal Tensor ViewAs(int[] shape) => Alias(ResolveShape(shape, "view"));

    private int[] ResolveShape(int[] shape, string op)
    {
        var resolved = (int[])shape.Clone();
        int inferred = Array.IndexOf(resolved, -1);
        if (inferred >= 0)
        {
            int known = 1;
            for (int d = 0; d < resolved.Length; d++) if (d != inferred) known *= resolved[d];
            if (known == 0 || Count % known != 0)
                throw new ArgumentException($"{op}: cannot reshape {ShapeString(_shape)} into {ShapeString(shape)}");
            resolved[inferred] = Count / known;
        }
        if (Layout.Product(resolved) != Count || resolved.Any(d => d < 0))
            throw new ArgumentException($"{op}: cannot reshape {ShapeString(_shape)} ({Count} elements) into {ShapeString(shape)}");
        return resolved;
    }

    /// <summary>Same data in a new shape (no copy: tensors are contiguous). One dimension may be −1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var y = ViewAs(shape);
        var x = this;
        return Record(y, "reshape", [x], [], g => [g.Reshape(x._shape)]);
    }

    /// <summary>Collapses dimensions <paramref name="startDim"/>..<paramref name="endDim"/> into one.</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        int s = NormaliseDim(startDim, Rank), e = NormaliseDim(endDim, Rank);
        var shape = _shape.Take(s).Append(Layout.Product(_shape, s, e + 1)).Concat(_shape.Skip(e + 1)).ToArray();
        return Reshape(shape);
    }

    /// <summary>Reorders dimensions (materialised: tensors stay contiguous).</summary>
    public Tensor Permute(params int[] order)
    {
        if (order.Length != Rank)
            throw new ArgumentException($"permute: order [{string.Join(", ", order)}] does not match rank {Rank} of {ShapeString(_shape)}");
        var perm = order.Select(d => NormaliseDim(d, Rank)).ToArray();
        if (perm.Distinct().Count() != Rank)
            throw new ArgumentException($"permute: order [{string.Join(", ", order)}] repeats a dimension");
        var shape = perm.Select(d => _shape[d]).ToArray();
        var y = new Tensor(Device, shape, DType);
        var strides = Layout.ContiguousStrides(_shape);
        if (Count > 0) Layout.Copy(Backend, View, perm.Select(d => strides[d]).ToArray(), y.View, Layout.ContiguousStrides(shape), shape);
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++) inverse[perm[i]] = i;
        return Record(y, "permute", [this], [], g => [g.Permute(inverse)]);
    }

    public Tensor Transpose(int dim0, int dim1)
    {
        var order = Enumerable.Range(0, Rank).ToArray();
        int a = NormaliseDim(dim0, Rank), b = NormaliseDim(dim1, Rank);
        (order[a], order[b]) = (order[b], order[a]);
        return Permute(order);
    }

    /// <summary>Broadcasts to <paramref name="shape"/> (materialised); the gradient sums back.</summary>
    public Tensor Expand(IReadOnlyList<int> shape)
    {
        var target = shape.ToArray();
        var check = Layout.Broadcast(_shape, target, "expand");
        if (!check.AsSpan().SequenceEqual(target))
            throw new ArgumentException($"expand: {ShapeString(_shape)} cannot be expanded to {ShapeString(target)}");
        var y = new Tensor(Device, target, DType);
        if (y.Count > 0)
            Layout.Copy(Backend, View, Layout.BroadcastStrides(_shape, target), y.View, Layout.ContiguousStrides(target), target);
        var x = this;
        return Record(y, "expand", [x], [], g => [g.SumTo(x._shape)]);
    }

    /// <summary>Joins tensors of equal shape except along <paramref name="dim"/>.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (tensors.Count == 0) throw new ArgumentException("concat: no tensors");
        var first = tensors[0];
        int d = NormaliseDim(dim, first.Rank);
        foreach (var t in tensors)
        {
            CheckSameDevice(first, t, "concat");
            bool compatible = t.Rank == first.Rank && t.DType == first.DType;
            for (int k = 0; k < first.Rank && compatible; k++) compatible = k == d || t._shape[k] == first._shape[k];
            if (!compatible)
            {
                var shapes = string.Join(" and ", tensors.Select(x => ShapeString(x._shape)));
                throw new ArgumentException($"concat along {dim}: shapes {shapes} do not match outside that dimension");
            }
        }
        var shape = (int[])first._shape.Clone();
        shape[d] = tensors.Sum(t => t._shape[d]);
        var y = new Tensor(first.Device, shape, first.DType);
        var yStrides = Layout.ContiguousStrides(shape);
        int offset = 0;
        foreach (var t in tensors)
        {
            if (t.Count > 0)
                Layout.Copy(t.Backend, t.View, Layout.ContiguousStrides(t._shape), y.View.At(offset * yStrides[d]), yStrides, t._shape);
            offset += t._shape[d];
        }
        var sizes = tensors.Select(t => t._shape[d]).ToArray();
        return Record(y, "concat", tensors.ToArray(), [], g =>
        {
            var grads = new Tensor?[sizes.Length];
            int start = 0;
            for (int i = 0; i < sizes.Length; i++) { grads[i] = g.Slice(d, start, sizes[i]); start += sizes[i]; }
            return grads;
        });
    }

    /// <summary>Elements [start, start + length) along <paramref name="dim"/> (a copy).</summary>
    public Tensor Slice(int dim, int start, int length)
    {
        int d = NormaliseDim(dim, Rank);
        if (start < 0 || length < 0 || start + length > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(start),
                $"slice [{start}, {start + length}) of dimension {dim} of size {_shape[d]} in {ShapeString(_shape)}");
        var shape = (int[])_shape.Clone();
        shape[d] = length;
        var strides = Layout.ContiguousStrides(_shape);
        var y = new Tensor(Device, shape, DType);
        if (y.Count > 0) Layout.Copy(Backend, View.At(start * strides[d]), strides, y.View, Layout.ContiguousStrides(shape), shape);
        var x = this;
        return Record(y, "slice", [x], [], g =>
        {
            var dx = Zeros(x._shape, x.Device);
            if (g.Count > 0)
                Layout.Copy(g.Backend, g.View, Layout.ContiguousStrides(shape), dx.View.At(start * strides[d]), strides, shape);
            return [dx];
        });
    }

    /// <summary>Splits into <paramref name="chunks"/> pieces along <paramref name="dim"/> (the last may be smaller,
    /// as in PyTorch).</summary>
    public Tensor[] Chunk(int chunks, int dim)
    {
        int d = NormaliseDim(dim, Rank);
        int size = (_shape[d] + chunks - 1) / chunks;
        var pieces = new List<Tensor>();
        for (int start = 0; start < _shape[d]; start += size) pieces.Add(Slice(d, start, Math.Min(size, _shape[d] - start)));
        return pieces.ToArray();
    }

    /// <summary>Adds a dimension of size 1 at <paramref name="dim"/>.</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = dim < 0 ? dim + Rank + 1 : dim;
        var shape = _shape.ToList();
        shape.Insert(d, 1);
        return Reshape(shape.ToArray());
    }
}
