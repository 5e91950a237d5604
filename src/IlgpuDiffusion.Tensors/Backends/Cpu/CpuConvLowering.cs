using System.Numerics.Tensors;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// im2col and its adjoint col2im on host arrays. Each (image, channel, kh, kw) fills one row of the column
/// matrix. The common stride-1 case whose output is as wide as the input ("same" convolutions, 1×1) copies a
/// row as one contiguous run of the shifted input plane and then zeroes the padding columns; the general case
/// walks output rows. Small images (7×7, 14×14 latents) made per-row span calls the dominant cost, so the
/// short loops here are plain pointer loops.
/// </summary>
internal static unsafe class CpuConvLowering
{
    /// <summary>Rows below this length are added element by element rather than through a vector call.</summary>
    private const int ShortRow = 32;

    public static void Im2Col(float[] xs, int xo, float[] cs, int co, ConvGeometry g)
    {
        CpuParallel.For(g.Batch * g.Channels, (long)g.KH * g.KW * g.ColumnCols, (start, end) =>
        {
            fixed (float* x = xs, c = cs)
                for (int bc = start; bc < end; bc++)
                {
                    int b = bc / g.Channels, channel = bc % g.Channels;
                    float* image = x + xo + (long)bc * g.Height * g.Width;
                    for (int kh = 0; kh < g.KH; kh++)
                        for (int kw = 0; kw < g.KW; kw++)
                        {
                            int row = (channel * g.KH + kh) * g.KW + kw;
                            float* dst = c + co + (long)b * g.ImageStride + (long)row * g.RowStride;
                            if (IsShiftedPlane(g)) CopyShiftedPlane(image, dst, g, kh, kw);
                            else GatherRows(image, dst, g, kh, kw);
                        }
                }
        });
    }

    public static void Col2Im(float[] cs, int co, float[] ds, int dxo, ConvGeometry g)
    {
        CpuParallel.For(g.Batch * g.Channels, (long)g.KH * g.KW * g.ColumnCols, (start, end) =>
        {
            fixed (float* c = cs, d = ds)
                for (int bc = start; bc < end; bc++)
                {
                    int b = bc / g.Channels, channel = bc % g.Channels;
                    float* image = d + dxo + (long)bc * g.Height * g.Width;
                    if (!g.Accumulate) new Span<float>(image, g.Height * g.Width).Clear();
                    for (int kh = 0; kh < g.KH; kh++)
                        for (int kw = 0; kw < g.KW; kw++)
                        {
                            int row = (channel * g.KH + kh) * g.KW + kw;
                            ScatterAddRows(c + co + (long)b * g.ImageStride + (long)row * g.RowStride, image, g, kh, kw);
                        }
                }
        });
    }

    /// <summary>Stride 1 and output rows as wide as input rows: a column-matrix row is the input plane shifted by
    /// (kh − PadH, kw − PadW), so the rows inside the image are one contiguous run of the plane.</summary>
    private static bool IsShiftedPlane(in ConvGeometry g) => g.StrideH == 1 && g.StrideW == 1 && g.OutW == g.Width;

    private static void CopyShiftedPlane(float* image, float* dst, in ConvGeometry g, int kh, int kw)
    {
        var (ohFirst, ohLast) = RowsInside(g, kh);
        var (owFirst, owLast) = ColumnsInside(g, kw);
        int total = g.OutH * g.OutW;
        if (ohFirst == ohLast || owFirst == owLast) { new Span<float>(dst, total).Clear(); return; }
        int first = ohFirst * g.OutW + owFirst, last = (ohLast - 1) * g.OutW + owLast;
        new Span<float>(dst, first).Clear();
        float* src = image + (ohFirst - g.PadH + kh) * g.Width + owFirst - g.PadW + kw;
        Buffer.MemoryCopy(src, dst + first, (long)(last - first) * sizeof(float), (long)(last - first) * sizeof(float));
        new Span<float>(dst + last, total - last).Clear();
        // the run also copied neighbouring rows' pixels into the padding columns between the first and last row
        for (int oh = ohFirst; oh < ohLast; oh++)
        {
            float* rowStart = dst + oh * g.OutW;
            for (int ow = 0; ow < owFirst; ow++) rowStart[ow] = 0f;
            for (int ow = owLast; ow < g.OutW; ow++) rowStart[ow] = 0f;
        }
    }

    private static void GatherRows(float* image, float* dst, in ConvGeometry g, int kh, int kw)
    {
        var (owFirst, owLast) = ColumnsInside(g, kw);
        for (int oh = 0; oh < g.OutH; oh++)
        {
            float* dstRow = dst + oh * g.OutW;
            int ih = oh * g.StrideH - g.PadH + kh;
            if ((uint)ih >= (uint)g.Height) { new Span<float>(dstRow, g.OutW).Clear(); continue; }
            float* src = image + ih * g.Width - g.PadW + kw;
            for (int ow = 0; ow < owFirst; ow++) dstRow[ow] = 0f;
            for (int ow = owFirst; ow < owLast; ow++) dstRow[ow] = src[ow * g.StrideW];
            for (int ow = owLast; ow < g.OutW; ow++) dstRow[ow] = 0f;
        }
    }

    // Walks the same taps as the gather on purpose: col2im is im2col's adjoint (a scatter-add where im2col gathers).
    private static void ScatterAddRows(float* src, float* image, in ConvGeometry g, int kh, int kw)
    {
        var (ohFirst, ohLast) = RowsInside(g, kh);
        var (owFirst, owLast) = ColumnsInside(g, kw);
        int length = owLast - owFirst;
        for (int oh = ohFirst; oh < ohLast; oh++)
        {
            float* from = src + oh * g.OutW;
            float* target = image + (oh * g.StrideH - g.PadH + kh) * g.Width - g.PadW + kw;
            if (g.StrideW == 1 && length >= ShortRow)
            {
                var span = new Span<float>(target + owFirst, length);
                TensorPrimitives.Add(span, new ReadOnlySpan<float>(from + owFirst, length), span);
            }
            else for (int ow = owFirst; ow < owLast; ow++) target[ow * g.StrideW] += from[ow];
        }
    }

    /// <summary>Output rows [first, last) whose input row (oh·stride − pad + kh) lies inside the image.</summary>
    private static (int First, int Last) RowsInside(in ConvGeometry g, int kh) =>
        Inside(g.PadH - kh, g.Height, g.StrideH, g.OutH);

    /// <summary>Output columns [first, last) whose input column (ow·stride − pad + kw) lies inside the image.</summary>
    private static (int First, int Last) ColumnsInside(in ConvGeometry g, int kw) =>
        Inside(g.PadW - kw, g.Width, g.StrideW, g.OutW);

    /// <summary>Outputs o in [0, count) with 0 ≤ o·stride − shift &lt; size.</summary>
    private static (int First, int Last) Inside(int shift, int size, int stride, int count)
    {
        int first = Math.Clamp(CeilDiv(shift, stride), 0, count);
        return (first, Math.Clamp(CeilDiv(size + shift, stride), first, count));
    }

    /// <summary>⌈a / b⌉ for b &gt; 0 and any sign of a.</summary>
    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);
}
