namespace IlgpuDiffusion.Tensors;

public sealed partial class Tensor
{
    /// <summary>Softmax along <paramref name="dim"/> (numerically stable: the row maximum is subtracted).</summary>
    public Tensor Softmax(int dim = -1)
    {
        RequireDType(DType.Float32, "softmax");
        int d = NormaliseDim(dim, Rank);
        if (d != Rank - 1) return Transpose(d, -1).Softmax(-1).Transpose(d, -1);
        int cols = _shape[^1], rows = Count / Math.Max(1, cols);
        var y = new Tensor(Device, (int[])_shape.Clone(), DType.Float32);
        if (Count > 0) Backend.Softmax(View, y.View, rows, cols);
        var x = this;
        return Record(y, "softmax", [x], [y], g =>
        {
            var dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
            if (x.Count > 0) x.Backend.SoftmaxBackward(y.View, g.View, dx.View, rows, cols);
            return [dx];
        });
    }
}
