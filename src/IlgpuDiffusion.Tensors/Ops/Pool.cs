using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

// Patch extraction and pooling on the convolution's im2col/col2im primitives.
public sealed partial class Tensor
{
    /// <summary>torch.nn.functional.unfold: NCHW x → (B, C·KH·KW, OH·OW) sliding patches, zero outside
    /// the (possibly asymmetric) padding. The gradient folds the patches back (col2im).</summary>
    public static Tensor Unfold(Tensor x, int kernelH, int kernelW, int stride = 1, Padding2d padding = default)
    {
        const string op = "unfold";
        if (x.Rank != 4) throw new ArgumentException($"{op}: expected an NCHW input, got {ShapeString(x._shape)}");
        int batch = x._shape[0], channels = x._shape[1], h = x._shape[2], w = x._shape[3];
        int outH = (h + padding.Top + padding.Bottom - kernelH) / stride + 1;
        int outW = (w + padding.Left + padding.Right - kernelW) / stride + 1;
        if (outH <= 0 || outW <= 0)
            throw new ArgumentException(
                $"{op}: input {ShapeString(x._shape)} is smaller than kernel {kernelH}x{kernelW} with this padding");
        var g = new ConvGeometry(batch, channels, h, w, kernelH, kernelW, stride, stride, padding.Top, padding.Left, outH, outW);
        var cols = new Tensor(x.Device, [batch, g.ColumnRows, g.ColumnCols], DType.Float32);
        x.Backend.Im2Col(x.View, cols.View, g);
        return Record(cols, op, [x], [], dy =>
        {
            var dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
            x.Backend.Col2Im(dy.View, dx.View, g);
            return [dx];
        });
    }

    /// <summary>torch.nn.functional.max_pool2d (ONNX MaxPool with [top, left, bottom, right] pads): padded
    /// positions never win. Ties share the gradient equally (PyTorch gives it to one of them).</summary>
    public static Tensor MaxPool2d(Tensor x, int kernel, int stride, Padding2d padding = default)
    {
        int batch = x.Size(0), channels = x.Size(1);
        var cols = Unfold(x, kernel, kernel, stride, padding); // (B, C·K·K, OH·OW)
        int outH = (x.Size(2) + padding.Top + padding.Bottom - kernel) / stride + 1, outW = cols.Size(2) / outH;
        var patches = cols.Reshape(batch, channels, kernel * kernel, outH, outW);
        if (padding != default)
        {
            // −∞ on the taps that fall into the padding (where the unfolded image of ones is 0)
            Tensor inside;
            using (Autograd.NoGrad())
                inside = Unfold(Ones([1, 1, x.Size(2), x.Size(3)], x.Device), kernel, kernel, stride, padding)
                    .Reshape(1, 1, kernel * kernel, outH, outW);
            patches = Where(inside, patches, Scalar(float.NegativeInfinity, x.Device));
        }
        return patches.Max(2);
    }
}
