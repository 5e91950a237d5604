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

    /// <summary>What im2col or col2im does with one tap of one image plane and its column-matrix row; <c>mask</c> is
    /// the tap's kw lane mask on the shifted-plane path, else null.</summary>
    private interface ITap
    {
        static abstract void Run(float* image, float* columnRow, int* mask, in TapExtent tap, in ConvGeometry g);
    }

    private readonly struct Gather : ITap
    {
        public static void Run(float* image, float* columnRow, int* mask, in TapExtent tap, in ConvGeometry g)
        {
            if (mask != null) GatherShiftedPlane(image, columnRow, mask, tap, g);
            else GatherRows(image, columnRow, tap, g);
        }
    }

    private readonly struct ScatterAdd : ITap
    {
        public static void Run(float* image, float* columnRow, int* mask, in TapExtent tap, in ConvGeometry g)
        {
            if (mask != null) ScatterAddShiftedPlane(columnRow, image, mask, tap, g);
            else ScatterAddRows(columnRow, image, tap, g);
        }
    }

    /// <summary>Where tap (kh, kw) reads inside the image: output rows [OhFirst, OhLast) and columns [OwFirst, OwLast);
    /// <see cref="Origin"/>, the input offset of output (0, 0), (kh − PadH)·W + kw − PadW (it may lie outside the plane);
    /// and [<see cref="First"/>, <see cref="Last"/>), the column-matrix entries from the first to the last one inside (on
    /// the shifted-plane path entry i reads pixel Origin + i). Computed once per call: 3×3 planes made it a per-tap cost.
    /// </summary>
    private readonly record struct TapExtent(int OhFirst, int OhLast, int OwFirst, int OwLast, int Origin)
    {
        public bool Empty => OhFirst == OhLast || OwFirst == OwLast;
        public int First(in ConvGeometry g) => Empty ? 0 : OhFirst * g.OutW + OwFirst;
        public int Last(in ConvGeometry g) => Empty ? 0 : (OhLast - 1) * g.OutW + OwLast;

        public static TapExtent[] All(in ConvGeometry g)
        {
            var taps = new TapExtent[g.KH * g.KW];
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                {
                    var (ohFirst, ohLast) = Inside(g.PadH - kh, g.Height, g.StrideH, g.OutH);
                    var (owFirst, owLast) = Inside(g.PadW - kw, g.Width, g.StrideW, g.OutW);
                    taps[kh * g.KW + kw] = new(ohFirst, ohLast, owFirst, owLast, (kh - g.PadH) * g.Width + kw - g.PadW);
                }
            return taps;
        }
    }

    /// <summary>Runs <typeparamref name="TTap"/> on every (image, channel, kh, kw), image planes split over cores.</summary>
    private static void ForEachTap<TTap>(float[] images, int imageOffset, float[] columns, int columnOffset, ConvGeometry g,
        bool clearImages) where TTap : ITap
    {
        var taps = TapExtent.All(g);
        int[]? masks = ShiftedPlaneMasks(g, taps);
        CpuParallel.For(g.Batch * g.Channels, (long)g.KH * g.KW * g.ColumnCols, (start, end) =>
        {
            fixed (float* x = images, c = columns)
            fixed (int* m = masks)
                for (int bc = start; bc < end; bc++)
                {
                    int b = bc / g.Channels, channel = bc % g.Channels;
                    float* image = x + imageOffset + (long)bc * g.Height * g.Width;
                    if (clearImages) new Span<float>(image, g.Height * g.Width).Clear();
                    for (int t = 0; t < taps.Length; t++)
                    {
                        int row = channel * taps.Length + t;
                        float* columnRow = c + columnOffset + (long)b * g.ImageStride + (long)row * g.RowStride;
                        TTap.Run(image, columnRow, m == null ? null : m + t % g.KW * g.ColumnCols, taps[t], g);
                    }
                }
        });
        if (masks != null) ArrayPool<int>.Shared.Return(masks);
    }

    /// <summary>For stride 1 with output rows as wide as input rows, column-matrix entry i of a tap is input pixel
    /// Origin + i: a shifted plane, whose entries in padding columns (i mod W outside [OwFirst, OwLast)) must read as zero.
    /// Returns, for each kw, all-ones lanes for the entries inside (KW · OutH·OutW ints, pooled), or null where the
    /// shifted-plane paths do not apply.</summary>
    private static int[]? ShiftedPlaneMasks(in ConvGeometry g, TapExtent[] taps)
    {
        if (g.StrideH != 1 || g.StrideW != 1 || g.OutW != g.Width || !Vector256.IsHardwareAccelerated) return null;
        int total = g.ColumnCols;
        var masks = ArrayPool<int>.Shared.Rent(g.KW * total);
        for (int kw = 0; kw < g.KW; kw++)
        {
            var tap = taps[kw];
            for (int i = 0; i < total; i++) masks[kw * total + i] = i % g.Width >= tap.OwFirst && i % g.Width < tap.OwLast ? -1 : 0;
        }
        return masks;
    }

    private static void GatherShiftedPlane(float* image, float* dst, int* mask, in TapExtent tap, in ConvGeometry g)
    {
        int first = tap.First(g), last = tap.Last(g), i = first;
        new Span<float>(dst, first).Clear();
        float* src = image + tap.Origin;
        for (; i <= last - Vector256<float>.Count; i += Vector256<float>.Count)
            Vector256.ConditionalSelect(Vector256.Load(mask + i).AsSingle(), Vector256.Load(src + i), Vector256<float>.Zero).Store(dst + i);
        for (; i < last; i++) dst[i] = mask[i] != 0 ? src[i] : 0f;
        new Span<float>(dst + last, g.ColumnCols - last).Clear();
    }

    // The same run as the gather, in the same tap order: col2im is im2col's adjoint. Masked lanes add +0.
    private static void ScatterAddShiftedPlane(float* src, float* image, int* mask, in TapExtent tap, in ConvGeometry g)
    {
        int i = tap.First(g), last = tap.Last(g);
        float* target = image + tap.Origin;
        for (; i <= last - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            var add = Vector256.ConditionalSelect(Vector256.Load(mask + i).AsSingle(), Vector256.Load(src + i), Vector256<float>.Zero);
            (Vector256.Load(target + i) + add).Store(target + i);
        }
        for (; i < last; i++)
            if (mask[i] != 0) target[i] += src[i];
    }

    private static void GatherRows(float* image, float* dst, in TapExtent tap, in ConvGeometry g)
    {
        int rowStep = g.StrideH * g.Width;
        for (int oh = 0; oh < g.OutH; oh++)
        {
            float* dstRow = dst + oh * g.OutW;
            if (oh < tap.OhFirst || oh >= tap.OhLast) { new Span<float>(dstRow, g.OutW).Clear(); continue; }
            float* src = image + tap.Origin + oh * rowStep;
            for (int ow = 0; ow < tap.OwFirst; ow++) dstRow[ow] = 0f;
            for (int ow = tap.OwFirst; ow < tap.OwLast; ow++) dstRow[ow] = src[ow * g.StrideW];
            for (int ow = tap.OwLast; ow < g.OutW; ow++) dstRow[ow] = 0f;
        }
    }

    // Walks the same taps as the gather on purpose: col2im is im2col's adjoint (a scatter-add where im2col gathers).
    private static void ScatterAddRows(float* src, float* image, in TapExtent tap, in ConvGeometry g)
    {
        int length = tap.OwLast - tap.OwFirst, rowStep = g.StrideH * g.Width;
        for (int oh = tap.OhFirst; oh < tap.OhLast; oh++)
        {
            float* from = src + oh * g.OutW;
            float* target = image + tap.Origin + oh * rowStep;
            if (g.StrideW == 1 && length >= ShortRow)
            {
                var span = new Span<float>(target + tap.OwFirst, length);
                TensorPrimitives.Add(span, new ReadOnlySpan<float>(from + tap.OwFirst, length), span);
            }
            else for (int ow = tap.OwFirst; ow < tap.OwLast; ow++) target[ow * g.StrideW] += from[ow];
        }
    }

    /// <summary>Outputs o in [0, count) with 0 ≤ o·stride − shift &lt; size.</summary>
    private static (int First, int Last) Inside(int shift, int size, int stride, int count)
    {
        int first = Math.Clamp(CeilDiv(shift, stride), 0, count);
        return (first, Math.Clamp(CeilDiv(size + shift, stride), first, count));
    }

    /// <summary>⌈a / b⌉ for b &gt; 0 and any sign of a.</summary>
    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);
}
