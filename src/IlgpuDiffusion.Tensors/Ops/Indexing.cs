namespace IlgpuDiffusion.Tensors;

public sealed partial class Tensor
{
    /// <summary>Rows of this tensor along <paramref name="dim"/> picked by the int32 <paramref name="index"/>
    /// (1-D); the gradient scatters back, adding over repeated indices. An out-of-range index is an error on
    /// the cpu executor and gives NaN rows on the others.</summary>
    public Tensor IndexSelect(int dim, Tensor index)
    {
        RequireDType(DType.Float32, "index_select");
        index.RequireDType(DType.Int32, "index_select");
        CheckSameDevice(this, index, "index_select");
        if (index.Rank != 1) throw new ArgumentException($"index_select: index must be 1-D, got {ShapeString(index._shape)}");
        int d = NormaliseDim(dim, Rank);
        int outer = Layout.Product(_shape, 0, d), n = _shape[d], inner = Layout.Product(_shape, d + 1), k = index.Count;
        // Checked where the indices already live on the host; reading them back from a GPU would stall the
        // queue every call (the VQ quantiser selects codes this way), so there the kernels mark a bad index
        // instead: NaN rows forward, nothing added backward.
        if (Device.IsCpu)
            foreach (int i in index.ToIntArray())
                if (i < 0 || i >= n)
                    throw new ArgumentOutOfRangeException(nameof(index), i,
                        $"index_select: index {i} is out of range for dimension {dim} of size {n}");
        var shape = (int[])_shape.Clone();
        shape[d] = k;
        var y = new Tensor(Device, shape, DType.Float32);
        if (y.Count > 0) Backend.IndexSelect(View, index.View, y.View, outer, n, k, inner);
        var x = this;
        return Record(y, "index_select", [x, index], [index], g =>
        {
            var dx = Zeros(x._shape, x.Device);
            if (g.Count > 0) x.Backend.IndexAdd(g.View, index.View, dx.View, outer, n, k, inner);
            return [dx, null];
        });
    }
}
