using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// im2col and its adjoint col2im on host arrays. Each (image, channel, kh, kw) fills one row of the column
/// matrix. In the common stride-1 case whose output is as wide as the input ("same" convolutions, 1×1), that row
/// is the input plane shifted by one offset, so it is gathered (or scatter-added) as one vectorised run whose
/// padding columns are masked by a per-kw lane mask computed once per call; the general case walks output rows.
/// Small images (7×7, 14×14 latents) made per-row span calls the dominant cost, so short loops are pointer loops.
/// </summary>
internal static unsafe class CpuConvLowering
{
    /// <summary>Rows below this length are added element by element rather than through a vector call.</summary>
    private const int ShortRow = 32;

    public static void Im2Col(float[] xs, int xo, float[] cs, int co, in ConvGeometry g) =>
        ForEachTap<Gather>(xs, xo, cs, co, g, clearImages: false);

    /// <summary>Without <see cref="ConvGeometry.Accumulate"/> the images are overwritten: cleared, then every tap added.</summary>
    public static void Col2Im(float[] cs, int co, float[] ds, int dxo, in ConvGeometry g) =>
        ForEachTap<ScatterAdd>(ds, dxo, cs, co, g, clearImages: !g.Accumulate);

    /// <summary>What im2col or col2im does with one tap (kh, kw) of one image plane and its column-matrix row;
    /// <c>mask</c> is the tap's kw lane mask on the shifted-plane path, else null.</summary>
    private interface ITap
    {
        static abstract void Run(float* image, float* columnRow, int* mask, in ConvGeometry g, int kh, int kw);
    }

    private readonly struct Gather : ITap
    {
        public static void Run(float* image, float* columnRow, int* mask, in ConvGeometry g, int kh, int kw)
        {
            if (mask != null) GatherShiftedPlane(image, columnRow, mask, g, kh, kw);
            else GatherRows(image, columnRow, g, kh, kw);
        }
    }

    private readonly struct ScatterAdd : ITap
    {
        public static void Run(float* image, float* columnRow, int* mask, in ConvGeometry g, int kh, int kw)
        {
            if (mask != null) ScatterAddShiftedPlane(columnRow, image, mask, g, kh, kw);
            else ScatterAddRows(columnRow, image, g, kh, kw);
        }
    }

    /// <summary>Runs <typeparamref name="TTap"/> on every (image, channel, kh, kw), image planes split over cores.</summary>
    private static void ForEachTap<TTap>(float[] images, int imageOffset, float[] columns, int columnOffset, ConvGeometry g,
        bool clearImages) where TTap : ITap
    {
        int[]? masks = ShiftedPlaneMasks(g);
        CpuParallel.For(g.Batch * g.Channels, (long)g.KH * g.KW * g.ColumnCols, (start, end) =>
        {
            fixed (float* x = images, c = columns)
            fixed (int* m = masks)
                for (int bc = start; bc < end; bc++)
                {
                    int b = bc / g.Channels, channel = bc % g.Channels;
                    float* image = x + imageOffset + (long)bc * g.Height * g.Width;
                    if (clearImages) new Span<float>(image, g.Height * g.Width).Clear();
                    for (int kh = 0; kh < g.KH; kh++)
                        for (int kw = 0; kw < g.KW; kw++)
                        {
                            int row = (channel * g.KH + kh) * g.KW + kw;
                            float* columnRow = c + columnOffset + (long)b * g.ImageStride + (long)row * g.RowStride;
                            TTap.Run(image, columnRow, m == null ? null : m + kw * g.ColumnCols, g, kh, kw);
                        }
                }
        });
        if (masks != null) ArrayPool<int>.Shared.Return(masks);
    }

    /// <summary>For stride 1 with output rows as wide as input rows, column-matrix entry i of tap (kh, kw) is input pixel
    /// i + (kh − PadH)·W + kw − PadW: a shifted plane, whose entries in padding columns (i mod W outside the columns inside
    /// the image) must read as zero. Returns, for each kw, all-ones lanes for the entries inside (KW · OutH·OutW ints,
    /// pooled), or null where the shifted-plane paths do not apply.</summary>
    private static int[]? ShiftedPlaneMasks(in ConvGeometry g)
    {
        if (g.StrideH != 1 || g.StrideW != 1 || g.OutW != g.Width || !Vector256.IsHardwareAccelerated) return null;
        int total = g.ColumnCols;
        var masks = ArrayPool<int>.Shared.Rent(g.KW * total);
        for (int kw = 0; kw < g.KW; kw++)
        {
            var (owFirst, owLast) = ColumnsInside(g, kw);
            for (int i = 0; i < total; i++) masks[kw * total + i] = i % g.Width >= owFirst && i % g.Width < owLast ? -1 : 0;
        }
        return masks;
    }

    /// <summary>The entries [First, Last) of a shifted plane between its first and last pixel inside the image (all in
    /// the plane, at <c>entry + Shift</c>); empty when no tap falls inside.</summary>
    private readonly record struct ShiftedRun(int First, int Last, int Shift)
    {
        public static ShiftedRun Of(in ConvGeometry g, int kh, int kw)
        {
            var (ohFirst, ohLast) = RowsInside(g, kh);
            var (owFirst, owLast) = ColumnsInside(g, kw);
            if (ohFirst == ohLast || owFirst == owLast) return default;
            return new(ohFirst * g.OutW + owFirst, (ohLast - 1) * g.OutW + owLast, (kh - g.PadH) * g.Width + kw - g.PadW);
        }
    }

    private static void GatherShiftedPlane(float* image, float* dst, int* mask, in ConvGeometry g, int kh, int kw)
    {
        var run = ShiftedRun.Of(g, kh, kw);
        int i = run.First;
        new Span<float>(dst, run.First).Clear();
        float* src = image + run.Shift;
        for (; i <= run.Last - Vector256<float>.Count; i += Vector256<float>.Count)
            Vector256.ConditionalSelect(Vector256.Load(mask + i).AsSingle(), Vector256.Load(src + i), Vector256<float>.Zero).Store(dst + i);
        for (; i < run.Last; i++) dst[i] = mask[i] != 0 ? src[i] : 0f;
        new Span<float>(dst + run.Last, g.ColumnCols - run.Last).Clear();
    }

    // The same run as the gather, in the same tap order: col2im is im2col's adjoint. Masked lanes add +0.
    private static void ScatterAddShiftedPlane(float* src, float* image, int* mask, in ConvGeometry g, int kh, int kw)
    {
        var run = ShiftedRun.Of(g, kh, kw);
        float* target = image + run.Shift;
        int i = run.First;
        for (; i <= run.Last - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            var add = Vector256.ConditionalSelect(Vector256.Load(mask + i).AsSingle(), Vector256.Load(src + i), Vector256<float>.Zero);
            (Vector256.Load(target + i) + add).Store(target + i);
        }
        for (; i < run.Last; i++)
            if (mask[i] != 0) target[i] += src[i];
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
