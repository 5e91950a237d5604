using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

/// <summary>Padding of a 2-D convolution; PyTorch's symmetric padding or ONNX-style [top, left, bottom, right].</summary>
public readonly record struct Padding2d(int Top, int Left, int Bottom, int Right)
{
    public static Padding2d Same(int p) => new(p, p, p, p);
    public static implicit operator Padding2d(int p) => Same(p);
}

// Convolutions lowered to im2col + the executor's GEMM; the backward passes reuse the same two primitives.
public sealed partial class Tensor
{
    /// <summary>torch.nn.functional.conv2d for NCHW x and weight (Cout, Cin, KH, KW), optional bias (Cout).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, Padding2d padding = default)
    {
        const string op = "conv2d";
        if (x.Rank != 4 || weight.Rank != 4 || x._shape[1] != weight._shape[1])
            throw new ArgumentException($"{op}: input {ShapeString(x._shape)} and weight {ShapeString(weight._shape)} do not match (expected NCHW input with C = weight.shape[1])");
        CheckSameDevice(x, weight, op);
        int batch = x._shape[0], cin = x._shape[1], h = x._shape[2], w = x._shape[3];
        int cout = weight._shape[0], kh = weight._shape[2], kw = weight._shape[3];
        int outH = (h + padding.Top + padding.Bottom - kh) / stride + 1, outW = (w + padding.Left + padding.Right - kw) / stride + 1;
        if (outH <= 0 || outW <= 0) throw new ArgumentException($"{op}: input {ShapeString(x._shape)} is smaller than kernel {kh}x{kw} with this padding");
        var g = new ConvGeometry(batch, cin, h, w, kh, kw, stride, stride, padding.Top, padding.Left, outH, outW);

        var cols = new Tensor(x.Device, [batch, g.ColumnRows, g.ColumnCols], DType.Float32);
        x.Backend.Im2Col(x.View, cols.View, g);
        var y = new Tensor(x.Device, [batch, cout, outH, outW], DType.Float32);
        // y[b] (Cout, OH·OW) = W (Cout, C·KH·KW) · cols[b]
        x.Backend.Gemm(new GemmArgs(false, false, cout, g.ColumnCols, g.ColumnRows, 1f, weight.View, g.ColumnRows, 0,
            cols.View, g.ColumnCols, g.ColumnsPerImage, 0f, y.View, g.ColumnCols, cout * g.ColumnCols, batch));
        var conv = Record(y, op, [x, weight], dy =>
        {
            Tensor? dx = null, dw = null;
            if (weight.RequiresGrad)
            {
                // dW = Σ_b dy[b] · cols[b]ᵀ, accumulated in place over the batch
                dw = Zeros(weight._shape, x.Device);
                for (int b = 0; b < batch; b++)
                    x.Backend.Gemm(new GemmArgs(false, true, cout, g.ColumnRows, g.ColumnCols, 1f, dy.View.At(b * cout * g.ColumnCols), g.ColumnCols, 0,
                        cols.View.At(b * g.ColumnsPerImage), g.ColumnCols, 0, 1f, dw.View, g.ColumnRows, 0));
            }
            if (x.RequiresGrad)
            {
                var dcols = new Tensor(x.Device, [batch, g.ColumnRows, g.ColumnCols], DType.Float32);
                x.Backend.Gemm(new GemmArgs(true, false, g.ColumnRows, g.ColumnCols, cout, 1f, weight.View, g.ColumnRows, 0,
                    dy.View, g.ColumnCols, cout * g.ColumnCols, 0f, dcols.View, g.ColumnCols, g.ColumnsPerImage, batch));
                dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
                x.Backend.Col2Im(dcols.View, dx.View, g);
                dcols.Dispose();
            }
            return [dx, dw];
        });
        return bias == null ? conv : conv.Add(bias.Reshape(1, cout, 1, 1));
    }

    /// <summary>torch.nn.functional.conv_transpose2d for NCHW x (B, Cin, H, W) and weight (Cin, Cout, KH, KW):
    /// the adjoint of conv2d, so it runs the conv2d backward-data path forwards.</summary>
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0)
    {
        const string op = "conv_transpose2d";
        if (x.Rank != 4 || weight.Rank != 4 || x._shape[1] != weight._shape[0])
            throw new ArgumentException($"{op}: input {ShapeString(x._shape)} and weight {ShapeString(weight._shape)} do not match (expected NCHW input with C = weight.shape[0])");
        CheckSameDevice(x, weight, op);
        int batch = x._shape[0], cin = x._shape[1], h = x._shape[2], w = x._shape[3];
        int cout = weight._shape[1], kh = weight._shape[2], kw = weight._shape[3];
        int outH = (h - 1) * stride - 2 * padding + kh, outW = (w - 1) * stride - 2 * padding + kw;
        if (outH <= 0 || outW <= 0) throw new ArgumentException($"{op}: output would be empty for input {ShapeString(x._shape)}");
        // geometry of the forward conv that maps y (B, Cout, outH, outW) to x's spatial size
        var g = new ConvGeometry(batch, cout, outH, outW, kh, kw, stride, stride, padding, padding, h, w);

        // cols[b] (Cout·KH·KW, H·W) = Wᵀ (Cout·KH·KW, Cin) · x[b] (Cin, H·W); y = col2im(cols)
        var cols = new Tensor(x.Device, [batch, g.ColumnRows, g.ColumnCols], DType.Float32);
        x.Backend.Gemm(new GemmArgs(true, false, g.ColumnRows, g.ColumnCols, cin, 1f, weight.View, g.ColumnRows, 0,
            x.View, g.ColumnCols, cin * g.ColumnCols, 0f, cols.View, g.ColumnCols, g.ColumnsPerImage, batch));
        var y = new Tensor(x.Device, [batch, cout, outH, outW], DType.Float32);
        x.Backend.Col2Im(cols.View, y.View, g);
        cols.Dispose();
        var deconv = Record(y, op, [x, weight], dy =>
        {
            var dcols = new Tensor(x.Device, [batch, g.ColumnRows, g.ColumnCols], DType.Float32);
            x.Backend.Im2Col(dy.View, dcols.View, g);
            Tensor? dx = null, dw = null;
            if (x.RequiresGrad)
            {
                dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
                x.Backend.Gemm(new GemmArgs(false, false, cin, g.ColumnCols, g.ColumnRows, 1f, weight.View, g.ColumnRows, 0,
                    dcols.View, g.ColumnCols, g.ColumnsPerImage, 0f, dx.View, g.ColumnCols, cin * g.ColumnCols, batch));
            }
            if (weight.RequiresGrad)
            {
                // dW (Cin, Cout·KH·KW) = Σ_b x[b] · dcols[b]ᵀ
                dw = Zeros(weight._shape, x.Device);
                for (int b = 0; b < batch; b++)
                    x.Backend.Gemm(new GemmArgs(false, true, cin, g.ColumnRows, g.ColumnCols, 1f, x.View.At(b * cin * g.ColumnCols), g.ColumnCols, 0,
                        dcols.View.At(b * g.ColumnsPerImage), g.ColumnCols, 0, 1f, dw.View, g.ColumnRows, 0));
            }
            dcols.Dispose();
            return [dx, dw];
        });
        return bias == null ? deconv : deconv.Add(bias.Reshape(1, cout, 1, 1));
    }
}
