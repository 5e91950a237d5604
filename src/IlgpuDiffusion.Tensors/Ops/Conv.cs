using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

/// <summary>Padding of a 2-D convolution; PyTorch's symmetric padding or ONNX-style [top, left, bottom, right].</summary>
public readonly record struct Padding2d(int Top, int Left, int Bottom, int Right)
{
    public static Padding2d Same(int p) => new(p, p, p, p);
    public static implicit operator Padding2d(int p) => Same(p);
}

// Convolutions lowered to im2col + one GEMM for the whole batch: the column matrix is laid out
// (C·KH·KW, Batch·OH·OW), so the weight is read once per call rather than once per image (which made
// small-spatial layers memory-bound), and the backward passes reuse the same two primitives.
public sealed partial class Tensor
{
    /// <summary>torch.nn.functional.conv2d for NCHW x and weight (Cout, Cin, KH, KW), optional bias (Cout).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, Padding2d padding = default)
    {
        const string op = "conv2d";
        var (batch, cin, h, w, cout, kh, kw) = ConvShapes(x, weight, inputChannelDim: 1, op);
        int outH = (h + padding.Top + padding.Bottom - kh) / stride + 1, outW = (w + padding.Left + padding.Right - kw) / stride + 1;
        if (outH <= 0 || outW <= 0)
            throw new ArgumentException($"{op}: input {ShapeString(x._shape)} is smaller than kernel {kh}x{kw} with this padding");
        var g = new ConvGeometry(batch, cin, h, w, kh, kw, stride, stride, padding.Top, padding.Left, outH, outW) { BatchInner = true };
        int columns = batch * g.ColumnCols;

        // The column matrix is C·KH·KW times the input: it is freed right after the product and, when the
        // weight needs a gradient, rebuilt from x in the backward pass (as PyTorch saves the input, not columns).
        var cols = Columns(x, g);
        // (Cout, B·OH·OW) = W (Cout, C·KH·KW) · cols, then back to (B, Cout, OH, OW)
        var yByChannel = new Tensor(x.Device, [cout, columns], DType.Float32);
        MatrixProduct(yByChannel, weight, cols);
        cols.Dispose();
        var y = new Tensor(x.Device, [batch, cout, outH, outW], DType.Float32);
        SwapBatchAndChannels(x.Backend, yByChannel.View, y.View, cout, batch, g.ColumnCols);
        yByChannel.Dispose();
        AddChannelBias(y, bias, op);
        // dW rebuilds the columns from x; dx reads the weight
        Tensor[] saved = [.. weight.RequiresGrad ? [x] : Array.Empty<Tensor>(), .. x.RequiresGrad ? [weight] : Array.Empty<Tensor>()];
        return Record(y, op, bias == null ? [x, weight] : [x, weight, bias], saved, dy =>
        {
            var dyByChannel = new Tensor(x.Device, [cout, columns], DType.Float32);
            SwapBatchAndChannels(x.Backend, dy.View, dyByChannel.View, batch, cout, g.ColumnCols);
            Tensor? dx = null, dw = null;
            if (weight.RequiresGrad)
            {
                dw = new Tensor(x.Device, (int[])weight._shape.Clone(), DType.Float32);
                using var rebuilt = Columns(x, g);
                MatrixProduct(dw, dyByChannel, rebuilt, transB: true); // dW (Cout, C·KH·KW) = dy · colsᵀ
            }
            if (x.RequiresGrad)
            {
                var dcols = new Tensor(x.Device, [g.ColumnRows, columns], DType.Float32);
                MatrixProduct(dcols, weight, dyByChannel, transA: true); // dcols (C·KH·KW, B·OH·OW) = Wᵀ · dy
                dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
                x.Backend.Col2Im(dcols.View, dx.View, g);
                dcols.Dispose();
            }
            dyByChannel.Dispose();
            return [dx, dw, BiasGradient(bias, dy)];
        });
    }

    /// <summary>y += bias (Cout) over every image and position, in place: one activation-sized tensor and pass fewer than
    /// a separate add.</summary>
    private static void AddChannelBias(Tensor y, Tensor? bias, string op)
    {
        if (bias == null) return;
        if (bias.Rank != 1 || bias.Count != y._shape[1])
            throw new ArgumentException($"{op}: bias of shape {ShapeString(bias._shape)} for {y._shape[1]} output channels");
        CheckSameDevice(y, bias, op);
        var strides = Layout.ContiguousStrides(y._shape);
        var (s, st, rank) = Layout.Collapse(y._shape, Layout.BroadcastStrides([1, bias.Count, 1, 1], y._shape), strides, strides);
        y.Backend.Binary<AddOp>(bias.View, st[0], y.View, st[1], y.View, s, rank);
    }

    /// <summary>The bias's gradient: dy summed over batch and space; null when the bias needs none (or there is none).</summary>
    private static Tensor? BiasGradient(Tensor? bias, Tensor dy) => bias is { RequiresGrad: true } ? dy.Sum([0, 2, 3]) : null;

    /// <summary>Checks an NCHW input against a 4-D weight whose dimension <paramref name="inputChannelDim"/> holds the
    /// input channels (1 in conv2d's (Cout, Cin, KH, KW), 0 in conv_transpose2d's (Cin, Cout, KH, KW)); returns the sizes.</summary>
    private static (int Batch, int Cin, int H, int W, int Cout, int KH, int KW) ConvShapes(
        Tensor x, Tensor weight, int inputChannelDim, string op)
    {
        if (x.Rank != 4 || weight.Rank != 4 || x._shape[1] != weight._shape[inputChannelDim])
            throw new ArgumentException($"{op}: input {ShapeString(x._shape)} and weight {ShapeString(weight._shape)} do not match "
                + $"(expected NCHW input with C = weight.shape[{inputChannelDim}])");
        CheckSameDevice(x, weight, op);
        return (x._shape[0], x._shape[1], x._shape[2], x._shape[3], weight._shape[1 - inputChannelDim], weight._shape[2], weight._shape[3]);
    }

    /// <summary>The (C·KH·KW, B·OH·OW) column matrix of x.</summary>
    private static Tensor Columns(Tensor x, in ConvGeometry g)
    {
        var cols = new Tensor(x.Device, [g.ColumnRows, g.Batch * g.ColumnCols], DType.Float32);
        x.Backend.Im2Col(x.View, cols.View, g);
        return cols;
    }

    /// <summary>torch.nn.functional.conv_transpose2d for NCHW x (B, Cin, H, W) and weight (Cin, Cout, KH, KW):
    /// the adjoint of conv2d, so it runs the conv2d backward-data path forwards.</summary>
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0)
    {
        const string op = "conv_transpose2d";
        var (batch, cin, h, w, cout, kh, kw) = ConvShapes(x, weight, inputChannelDim: 0, op);
        int outH = (h - 1) * stride - 2 * padding + kh, outW = (w - 1) * stride - 2 * padding + kw;
        if (outH <= 0 || outW <= 0) throw new ArgumentException($"{op}: output would be empty for input {ShapeString(x._shape)}");
        // geometry of the forward conv that maps y (B, Cout, outH, outW) to x's spatial size
        var g = new ConvGeometry(batch, cout, outH, outW, kh, kw, stride, stride, padding, padding, h, w) { BatchInner = true };
        int columns = batch * g.ColumnCols;

        // cols (Cout·KH·KW, B·H·W) = Wᵀ (Cout·KH·KW, Cin) · x as (Cin, B·H·W); y = col2im(cols)
        var xByChannel = new Tensor(x.Device, [cin, columns], DType.Float32);
        SwapBatchAndChannels(x.Backend, x.View, xByChannel.View, batch, cin, g.ColumnCols);
        var cols = new Tensor(x.Device, [g.ColumnRows, columns], DType.Float32);
        MatrixProduct(cols, weight, xByChannel, transA: true);
        var y = new Tensor(x.Device, [batch, cout, outH, outW], DType.Float32);
        x.Backend.Col2Im(cols.View, y.View, g);
        cols.Dispose();
        AddChannelBias(y, bias, op);
        // dx reads the weight; dW reads x, kept in the channel-major layout the product wants
        Tensor[] saved = [.. x.RequiresGrad ? [weight] : Array.Empty<Tensor>(), .. weight.RequiresGrad ? [xByChannel] : Array.Empty<Tensor>()];
        Record(y, op, bias == null ? [x, weight] : [x, weight, bias], saved, dy =>
        {
            var dcols = new Tensor(x.Device, [g.ColumnRows, columns], DType.Float32);
            x.Backend.Im2Col(dy.View, dcols.View, g);
            Tensor? dx = null, dw = null;
            if (x.RequiresGrad)
            {
                var dxByChannel = new Tensor(x.Device, [cin, columns], DType.Float32);
                MatrixProduct(dxByChannel, weight, dcols); // dx (Cin, B·H·W) = W (Cin, Cout·KH·KW) · dcols
                dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
                SwapBatchAndChannels(x.Backend, dxByChannel.View, dx.View, cin, batch, g.ColumnCols);
                dxByChannel.Dispose();
            }
            if (weight.RequiresGrad)
            {
                dw = new Tensor(x.Device, (int[])weight._shape.Clone(), DType.Float32);
                MatrixProduct(dw, xByChannel, dcols, transB: true); // dW (Cin, Cout·KH·KW) = x as (Cin, B·H·W) · dcolsᵀ
            }
            dcols.Dispose();
            return [dx, dw, BiasGradient(bias, dy)];
        });
        if (!y.RequiresGrad || !weight.RequiresGrad) xByChannel.Dispose(); // only dW reads it
        return y;
    }

    /// <summary>c = op(a) · op(b) on the tensors' storage, without autograd; each tensor is read as the row-major matrix of
    /// its first dimension by the rest (a weight (Cout, Cin, KH, KW) as (Cout, Cin·KH·KW), a column matrix as it is).</summary>
    private static void MatrixProduct(Tensor c, Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        var (rowsA, colsA) = AsMatrix(a);
        var (rowsB, colsB) = AsMatrix(b);
        int m = transA ? colsA : rowsA, k = transA ? rowsA : colsA, n = transB ? rowsB : colsB;
        if ((transB ? colsB : rowsB) != k || AsMatrix(c) != (m, n))
            throw new InvalidOperationException($"matrix product of {ShapeString(a._shape)}{(transA ? "ᵀ" : "")} and "
                + $"{ShapeString(b._shape)}{(transB ? "ᵀ" : "")} into {ShapeString(c._shape)}: shapes do not match");
        c.Backend.Gemm(new GemmArgs(m, n, k, new(a.View, colsA, transA), new(b.View, colsB, transB), GemmOperand.Matrix(c.View, n)));
    }

    private static (int Rows, int Cols) AsMatrix(Tensor t) => (t._shape[0], Layout.Product(t._shape, from: 1));

    /// <summary>(A, B, S) → (B, A, S): moves between image-major (N, C, H·W) and channel-major (C, N·H·W) layouts.</summary>
    private static void SwapBatchAndChannels(Backends.IBackend backend, BufferView source, BufferView destination,
        int a, int b, int spatial) =>
        Layout.Copy(backend, source, [b * spatial, spatial, 1], destination, [spatial, a * spatial, 1], [a, b, spatial]);
}
