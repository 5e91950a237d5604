using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

/// <summary>Padding of a 2-D convolution; PyTorch's symmetric padding or ONNX-style [top, left, bottom, right].</summary>
public readonly record struct Padding2d(int Top, int Left, int Bottom, int Right)
{
    public static Padding2d Same(int p) => new(p, p, p, p);
    public static implicit operator Padding2d(int p) => Same(p);
}

// Convolutions lowered to im2col + GEMM over a chunk of images at a time: the column matrix is laid out
// (C·KH·KW, images·OH·OW), so the weight is read once per chunk rather than once per image (which made
// small-spatial layers memory-bound), while the column matrix, C·KH·KW times its images, stays bounded
// (ColumnChunkElements) and the same size from call to call; the backward passes reuse the same primitives. Executors
// that gather patches straight into their product (IBackend.GathersConvPatches) skip the column matrix in the forward
// pass and the weight gradient (conv_transpose2d: its backward pass) under float32 accumulation.
public sealed partial class Tensor
{
    /// <summary>Most elements of one chunk's column matrix (8 MiB), unless a single image needs more: smaller chunks
    /// make the GEMMs too narrow to run near the cores' peak (4 MiB cost the mnist steps 15-30 %), larger ones cost
    /// memory (16 MiB: +15 % in the mnist sampling step).</summary>
    private const int ColumnChunkElements = 1 << 21;

    /// <summary>torch.nn.functional.conv2d for NCHW x and weight (Cout, Cin, KH, KW), optional bias (Cout).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, Padding2d padding = default)
    {
        const string op = "conv2d";
        var (batch, cin, h, w, cout, kh, kw) = ConvShapes(x, weight, inputChannelDim: 1, op);
        int outH = (h + padding.Top + padding.Bottom - kh) / stride + 1, outW = (w + padding.Left + padding.Right - kw) / stride + 1;
        if (outH <= 0 || outW <= 0)
            throw new ArgumentException($"{op}: input {ShapeString(x._shape)} is smaller than kernel {kh}x{kw} with this padding");
        var g = new ConvGeometry(batch, cin, h, w, kh, kw, stride, stride, padding.Top, padding.Left, outH, outW) { BatchInner = true };
        int columns = batch * g.ColumnCols, rows = g.ColumnRows;

        // (Cout, B·OH·OW) = W (Cout, C·KH·KW) · cols, chunk by chunk, then back to (B, Cout, OH, OW). The columns are
        // rebuilt from x in the backward pass when the weight needs a gradient (PyTorch too saves the input, not columns).
        var yByChannel = new Tensor(x.Device, [cout, columns], DType.Float32);
        if (GathersPatches(x.Backend, g))
            x.Backend.ConvGemm(weight.View, x.View, yByChannel.View, cout, g, transposed: false);
        else
            ForEachColumnChunk(x, g, (chunk, cols) => x.Backend.Gemm(new GemmArgs(cout, chunk.Columns, rows,
                new(weight.View, rows), new(cols, chunk.Columns), new(yByChannel.View.At(chunk.FirstColumn), columns))));
        var y = new Tensor(x.Device, [batch, cout, outH, outW], DType.Float32);
        if (bias == null) SwapBatchAndChannels(x.Backend, yByChannel.View, y.View, cout, batch, g.ColumnCols);
        else // the bias is added in the pass that moves the product into image-major order
        {
            CheckBias(y, bias, dim: 1, op, "output channels");
            int spatial = g.ColumnCols;
            y.Backend.Binary<AddOp>(yByChannel.View, Dim6.From([spatial, batch * spatial, 1]), bias.View, Dim6.From([0, 1, 0]),
                y.View, Dim6.From([batch, cout, spatial]), 3);
        }
        yByChannel.Dispose();
        // dW rebuilds the columns from x; dx reads the weight
        Tensor[] saved = [.. SavedIf(weight.RequiresGrad, x), .. SavedIf(x.RequiresGrad, weight)];
        return Record(y, op, bias == null ? [x, weight] : [x, weight, bias], saved, dy =>
        {
            var dyByChannel = new Tensor(x.Device, [cout, columns], DType.Float32);
            SwapBatchAndChannels(x.Backend, dy.View, dyByChannel.View, batch, cout, g.ColumnCols);
            Tensor? dx = null, dw = null;
            if (weight.RequiresGrad)
            {
                // dW (Cout, C·KH·KW) = dy · colsᵀ, summed over the chunks
                var dW = dw = new Tensor(x.Device, (int[])weight._shape.Clone(), DType.Float32);
                if (GathersPatches(x.Backend, g))
                    x.Backend.ConvGemm(dyByChannel.View, x.View, dW.View, cout, g, transposed: true);
                else
                    ForEachColumnChunk(x, g, (chunk, cols) => x.Backend.Gemm(new GemmArgs(cout, rows, chunk.Columns,
                        new(dyByChannel.View.At(chunk.FirstColumn), columns), new(cols, chunk.Columns, Transposed: true),
                        new(dW.View, rows))
                    { Beta = chunk.FirstColumn == 0 ? 0f : 1f }));
            }
            if (x.RequiresGrad)
            {
                // dcols (C·KH·KW, images·OH·OW) = Wᵀ · dy for each chunk, scattered back into its images
                var dX = dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
                ForEachChunk(x.Device, g, (chunk, dcols) =>
                {
                    x.Backend.Gemm(new GemmArgs(rows, chunk.Columns, cout, new(weight.View, rows, Transposed: true),
                        new(dyByChannel.View.At(chunk.FirstColumn), columns), new(dcols, chunk.Columns)));
                    x.Backend.Col2Im(dcols, dX.View.At(chunk.Image * cin * h * w), chunk.Geometry);
                });
            }
            dyByChannel.Dispose();
            return [dx, dw, BiasGradient(bias, dy)];
        });
    }

    /// <summary>Whether the products with the column matrix gather it from the images (<see cref="IBackend.ConvGemm"/>):
    /// where the executor can, under float32 accumulation, for kernels larger than 1×1 (whose column matrix is the input
    /// regrouped, which the packing copies as fast as it gathers it). Outputs of 1×1 to 2×2 positions gain too since the
    /// cpu packs panels across images by table lookup (forward 0.5-0.7× the time of im2col + GEMM, weight gradient
    /// 0.5-1.1×).</summary>
    private static bool GathersPatches(IBackend backend, in ConvGeometry g) =>
        backend.GathersConvPatches && Precision.Gemm == GemmAccumulation.Float32 && g.KH * g.KW > 1;

    /// <summary>Part of a convolution's column matrix: <see cref="Geometry"/> (im2col/col2im of the chunk, relative to
    /// image <see cref="Image"/>) covers <see cref="Columns"/> columns from <see cref="FirstColumn"/> of the whole batch's
    /// (…, B·OH·OW) matrix.</summary>
    private readonly record struct ColumnChunk(ConvGeometry Geometry, int Image, int FirstColumn, int Columns);

    /// <summary>Splits the column matrix of <paramref name="g"/> into chunks of at most <see cref="ColumnChunkElements"/>
    /// (at least one output row): several whole images, or, where one image needs more, bands of its output rows (a
    /// band's geometry shifts the top padding; col2im of every band but the first adds into the image). Calls
    /// <paramref name="body"/> with each chunk and a scratch column matrix (C·KH·KW, chunk columns) for it.</summary>
    private static void ForEachChunk(Device device, ConvGeometry g, Action<ColumnChunk, BufferView> body)
    {
        int images = Math.Clamp(ColumnChunkElements / Math.Max(1, g.ColumnsPerImage), 1, g.Batch);
        int bandRows = g.ColumnsPerImage <= ColumnChunkElements
            ? g.OutH : Math.Clamp(ColumnChunkElements / Math.Max(1, g.ColumnRows * g.OutW), 1, g.OutH);
        using var scratch = new Tensor(device, [g.ColumnRows, Math.Max(images * g.ColumnCols, bandRows * g.OutW)], DType.Float32);
        if (bandRows == g.OutH)
            for (int first = 0; first < g.Batch; first += images)
            {
                var chunk = g with { Batch = Math.Min(images, g.Batch - first) };
                body(new ColumnChunk(chunk, first, first * g.ColumnCols, chunk.Batch * g.ColumnCols), scratch.View);
            }
        else
            for (int image = 0; image < g.Batch; image++)
                for (int top = 0; top < g.OutH; top += bandRows)
                {
                    var band = g with
                    {
                        Batch = 1,
                        OutH = Math.Min(bandRows, g.OutH - top),
                        PadH = g.PadH - top * g.StrideH,
                        Accumulate = top > 0,
                    };
                    body(new ColumnChunk(band, image, image * g.ColumnCols + top * g.OutW, band.ColumnCols), scratch.View);
                }
    }

    /// <summary><see cref="ForEachChunk"/> with each chunk's column matrix built from the images of <paramref name="source"/>.</summary>
    private static void ForEachColumnChunk(Tensor source, ConvGeometry g, Action<ColumnChunk, BufferView> body) =>
        ForEachChunk(source.Device, g, (chunk, cols) =>
        {
            source.Backend.Im2Col(source.View.At(chunk.Image * g.Channels * g.Height * g.Width), cols, chunk.Geometry);
            body(chunk, cols);
        });

    /// <summary>y += bias in place, one bias value per index of y's dimension <paramref name="dim"/> (a convolution's
    /// channels, a linear layer's features): one activation-sized tensor and pass fewer than a separate add. Only where
    /// no backward rule reads y as it was.</summary>
    private static void AddBias(Tensor y, Tensor bias, int dim, string op, string what)
    {
        CheckBias(y, bias, dim, op, what);
        if (y.Count == 0) return;
        var biasShape = Enumerable.Repeat(1, y.Rank).ToArray();
        biasShape[dim] = bias.Count;
        var strides = Layout.ContiguousStrides(y._shape);
        var (s, st, rank) = Layout.Collapse(y._shape, Layout.BroadcastStrides(biasShape, y._shape), strides, strides);
        y.Backend.Binary<AddOp>(bias.View, st[0], y.View, st[1], y.View, s, rank);
    }

    /// <summary>A bias must hold one value per index of y's dimension <paramref name="dim"/> (<paramref name="what"/>) and
    /// live on y's device.</summary>
    private static void CheckBias(Tensor y, Tensor bias, int dim, string op, string what)
    {
        if (bias.Rank != 1 || bias.Count != y._shape[dim])
            throw new ArgumentException($"{op}: bias of shape {ShapeString(bias._shape)} for {y._shape[dim]} {what}");
        CheckSameDevice(y, bias, op);
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
        int columns = batch * g.ColumnCols, rows = g.ColumnRows;

        // cols (Cout·KH·KW, B·H·W) = Wᵀ (Cout·KH·KW, Cin) · x as (Cin, B·H·W), chunk by chunk; y = col2im(cols)
        var xByChannel = new Tensor(x.Device, [cin, columns], DType.Float32);
        SwapBatchAndChannels(x.Backend, x.View, xByChannel.View, batch, cin, g.ColumnCols);
        var y = new Tensor(x.Device, [batch, cout, outH, outW], DType.Float32);
        ForEachChunk(x.Device, g, (chunk, cols) =>
        {
            x.Backend.Gemm(new GemmArgs(rows, chunk.Columns, cin, new(weight.View, rows, Transposed: true),
                new(xByChannel.View.At(chunk.FirstColumn), columns), new(cols, chunk.Columns)));
            x.Backend.Col2Im(cols, y.View.At(chunk.Image * cout * outH * outW), chunk.Geometry);
        });
        if (bias != null) AddBias(y, bias, dim: 1, op, "output channels");
        // dx reads the weight; dW reads x, kept in the channel-major layout the product wants
        Tensor[] saved = [.. SavedIf(x.RequiresGrad, weight), .. SavedIf(weight.RequiresGrad, xByChannel)];
        Record(y, op, bias == null ? [x, weight] : [x, weight, bias], saved, dy =>
        {
            var dxByChannel = x.RequiresGrad ? new Tensor(x.Device, [cin, columns], DType.Float32) : null;
            var dw = weight.RequiresGrad ? new Tensor(x.Device, (int[])weight._shape.Clone(), DType.Float32) : null;
            if (GathersPatches(x.Backend, g))
            {
                if (dxByChannel != null) x.Backend.ConvGemm(weight.View, dy.View, dxByChannel.View, cin, g, transposed: false);
                if (dw != null) x.Backend.ConvGemm(xByChannel.View, dy.View, dw.View, cin, g, transposed: true);
            }
            else ForEachColumnChunk(dy, g, (chunk, dcols) =>
            {
                int first = chunk.FirstColumn, n = chunk.Columns;
                if (dxByChannel != null) // dx (Cin, B·H·W) = W (Cin, Cout·KH·KW) · dcols
                    x.Backend.Gemm(new GemmArgs(cin, n, rows, new(weight.View, rows), new(dcols, n),
                        new(dxByChannel.View.At(first), columns)));
                if (dw != null) // dW (Cin, Cout·KH·KW) = x as (Cin, B·H·W) · dcolsᵀ, summed over the chunks
                    x.Backend.Gemm(new GemmArgs(cin, rows, n, new(xByChannel.View.At(first), columns), new(dcols, n, Transposed: true),
                        new(dw.View, rows))
                    { Beta = first == 0 ? 0f : 1f });
            });
            Tensor? dx = null;
            if (dxByChannel != null)
            {
                dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
                SwapBatchAndChannels(x.Backend, dxByChannel.View, dx.View, cin, batch, g.ColumnCols);
                dxByChannel.Dispose();
            }
            return [dx, dw, BiasGradient(bias, dy)];
        });
        if (!y.RequiresGrad || !weight.RequiresGrad) xByChannel.Dispose(); // only dW reads it
        return y;
    }

    /// <summary>(A, B, S) → (B, A, S): moves between image-major (N, C, H·W) and channel-major (C, N·H·W) layouts.</summary>
    private static void SwapBatchAndChannels(Backends.IBackend backend, BufferView source, BufferView destination,
        int a, int b, int spatial) =>
        Layout.Copy(backend, source, [b * spatial, spatial, 1], destination, [spatial, a * spatial, 1], [a, b, spatial]);
}
