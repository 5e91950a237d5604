using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// im2col and its adjoint col2im on host arrays. Each (image, channel, kh, kw) fills one row of the column
/// matrix. In the common stride-1 case whose output is as wide as the input ("same" convolutions, 1×1), that row
/// is the input plane shifted by one offset, so it is gathered (or scatter-added) as one vectorised run whose
/// padding is masked by a per-tap lane mask computed once per call; the general case walks output rows.
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
    /// the tap's lane mask (<see cref="TapMasks"/>) on the shifted-plane path, else null.</summary>
    private interface ITap
    {
        static abstract void Run(float* image, float* columnRow, int* mask, in TapExtent tap, in ConvGeometry g);
    }

    private readonly struct Gather : ITap
    {
        public static void Run(float* image, float* columnRow, int* mask, in TapExtent tap, in ConvGeometry g)
        {
            if (mask != null) GatherShiftedRun(image, columnRow, mask, tap, g, 0, g.ColumnCols);
            else GatherRun(image, columnRow, tap, g, 0, g.ColumnCols);
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
        /// <summary>Whether this tap reads a pixel inside the image at output (oh, ow).</summary>
        public bool ReadsImageAt(int oh, int ow) => oh >= OhFirst && oh < OhLast && ow >= OwFirst && ow < OwLast;
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
                        TTap.Run(image, columnRow, m == null ? null : m + t * g.ColumnCols, taps[t], g);
                    }
                }
        });
        if (masks != null) ArrayPool<int>.Shared.Return(masks);
    }

    /// <summary>For stride 1 with output rows as wide as input rows, column-matrix entry i of a tap is input pixel
    /// Origin + i: a shifted plane, whose entries in padding must read as zero. Masked loads then read a run without a
    /// branch and without touching the padding's addresses, which may lie outside the array.</summary>
    private static bool IsShiftedPlane(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.OutW == g.Width && Avx.IsSupported;

    /// <summary><see cref="TapMasks"/> where the shifted-plane paths apply, else null.</summary>
    private static int[]? ShiftedPlaneMasks(in ConvGeometry g, TapExtent[] taps) => IsShiftedPlane(g) ? TapMasks(g, taps) : null;

    /// <summary>For each tap and output position, all-ones where the tap reads a pixel inside the image and zero where it
    /// reads padding (KH·KW · OutH·OutW ints, pooled).</summary>
    private static int[] TapMasks(in ConvGeometry g, TapExtent[] taps)
    {
        int total = g.ColumnCols;
        var masks = ArrayPool<int>.Shared.Rent(taps.Length * total);
        for (int t = 0; t < taps.Length; t++)
            for (int i = 0; i < total; i++) masks[t * total + i] = taps[t].ReadsImageAt(i / g.OutW, i % g.OutW) ? -1 : 0;
        return masks;
    }

    /// <summary>Entries [first, first + length) of a tap's shifted plane (see <see cref="ShiftedPlaneMasks"/>): entry i reads
    /// pixel Origin + i where its lane mask is set, else 0. Only [First, Last) is read, so plain loads stay in the image.</summary>
    private static void GatherShiftedRun(float* image, float* dst, int* mask, in TapExtent tap, in ConvGeometry g,
        int first, int length)
    {
        int end = first + length;
        int lo = Math.Clamp(tap.First(g), first, end), hi = Math.Clamp(tap.Last(g), lo, end), i = lo;
        Zero(dst, lo - first);
        float* src = image + tap.Origin;
        dst -= first;
        for (; i <= hi - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            var inside = Vector256.Load(mask + i).AsSingle();
            Vector256.ConditionalSelect(inside, Vector256.Load(src + i), Vector256<float>.Zero).Store(dst + i);
        }
        for (; i < hi; i++) dst[i] = mask[i] != 0 ? src[i] : 0f;
        Zero(dst + hi, end - hi);
    }

    /// <summary>Clears n floats; short runs (the planes of 1×1 to 3×3 images) by a loop, where a span call cost more
    /// than the run.</summary>
    private static void Zero(float* p, int n)
    {
        if (n >= ShortRow) new Span<float>(p, n).Clear();
        else for (int i = 0; i < n; i++) p[i] = 0f;
    }

    /// <summary>Entries [first, first + length) of a tap's column-matrix row in any geometry, an output row's part at a
    /// time.</summary>
    private static void GatherRun(float* image, float* dst, in TapExtent tap, in ConvGeometry g, int first, int length)
    {
        int rowStep = g.StrideH * g.Width, end = first + length;
        for (int oh = first / g.OutW, start = first; start < end; oh++)
        {
            int rowStart = oh * g.OutW, stop = Math.Min(end, rowStart + g.OutW);
            int lo = start - rowStart, hi = stop - rowStart; // output columns [lo, hi) of row oh
            float* row = dst + (start - first) - lo;
            if (oh < tap.OhFirst || oh >= tap.OhLast)
                for (int ow = lo; ow < hi; ow++) row[ow] = 0f;
            else
            {
                float* src = image + tap.Origin + oh * rowStep;
                int inFirst = Math.Clamp(tap.OwFirst, lo, hi), inLast = Math.Clamp(tap.OwLast, inFirst, hi);
                for (int ow = lo; ow < inFirst; ow++) row[ow] = 0f;
                for (int ow = inFirst; ow < inLast; ow++) row[ow] = src[ow * g.StrideW];
                for (int ow = inLast; ow < hi; ow++) row[ow] = 0f;
            }
            start = stop;
        }
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

    /// <summary>
    /// The column matrix of a convolution as a GEMM's B operand, gathered from the images a packed panel at a time
    /// instead of being built whole: rows C·KH·KW, columns Batch·OH·OW image-major. Same taps and lane masks as
    /// <see cref="Im2Col"/>; the panel is written where the column matrix would have been copied into it.
    /// </summary>
    internal sealed class Patches : IDisposable
    {
        private readonly float* _images;
        private readonly ConvGeometry _g;
        private readonly TapExtent[] _taps;
        /// <summary><see cref="TapMasks"/>, in every geometry.</summary>
        private readonly int[] _masks;
        /// <summary>Off the shifted-plane path: for each output position, its pixel's offset from its tap's origin
        /// (oh·StrideH·W + ow·StrideW; pooled). Null on it, where the offset of position q is q.</summary>
        private readonly int[]? _positionOffsets;

        /// <param name="images">x (Batch, C, H, W), pinned by the caller for this object's life.</param>
        public Patches(float* images, in ConvGeometry g)
        {
            _images = images;
            _g = g;
            _taps = TapExtent.All(g);
            _masks = TapMasks(g, _taps);
            if (IsShiftedPlane(g)) return;
            _positionOffsets = ArrayPool<int>.Shared.Rent(g.ColumnCols);
            for (int q = 0; q < g.ColumnCols; q++) _positionOffsets[q] = q / g.OutW * g.StrideH * g.Width + q % g.OutW * g.StrideW;
        }

        /// <summary>Packs rows [k0, k0 + depth) × columns [n0, n0 + cols) of the column matrix, or with
        /// <paramref name="transposed"/> of its transpose, as panel[p·width + j], zero beyond cols.</summary>
        [SkipLocalsInit]
        public void Pack(float* panel, int width, int k0, int depth, int n0, int cols, bool transposed)
        {
            fixed (int* masks = _masks)
            {
                if (!transposed)
                {
                    int* runs = stackalloc int[3 * cols];
                    int count = Runs(runs, n0, cols);
                    if (count == 1 && _positionOffsets == null && cols == width && width % Vector256<float>.Count == 0)
                    {
                        PackShiftedPanel(panel, width, k0, depth, runs[0], runs[1], masks);
                        return;
                    }
                    PackIndexedPanel(panel, width, k0, depth, runs, count, cols, masks);
                    return;
                }
                // op(B) = colsᵀ: panel column j is column-matrix row n0 + j at positions [k0, k0 + depth). Eight such rows
                // are gathered side by side, then transposed into the panel as transposed operands are packed.
                int* positions = stackalloc int[3 * depth];
                int runCount = Runs(positions, k0, depth);
                float* rows = stackalloc float[8 * depth];
                var column = new RowIndex(n0, _taps.Length);
                for (int j = 0; j < width; j += 8)
                {
                    for (int r = 0; r < 8; r++)
                    {
                        if (j + r < cols)
                        {
                            GatherRow(rows + r * depth, column, positions, runCount, masks);
                            column.Next();
                        }
                        else new Span<float>(rows + r * depth, depth).Clear();
                    }
                    CpuGemm.PackEightColumns(rows, depth, panel + j, width, depth);
                }
            }
        }

        /// <summary>The common case of a stride-1 "same" convolution: the panel's columns are one run inside one image, so
        /// every row is a masked load of <paramref name="width"/> shifted pixels, without per-row bookkeeping (a division
        /// per row cost as much as the gather).</summary>
        private void PackShiftedPanel(float* panel, int width, int k0, int depth, int image, int first, int* masks)
        {
            int plane = _g.Height * _g.Width;
            float* imageStart = _images + (long)image * _g.Channels * plane + first;
            var row = new RowIndex(k0, _taps.Length);
            for (int p = 0; p < depth; p++, row.Next())
            {
                float* src = imageStart + (long)row.Channel * plane + _taps[row.Tap].Origin, dst = panel + (nint)p * width;
                int* mask = masks + row.Tap * _g.ColumnCols + first;
                for (int i = 0; i < width; i += Vector256<float>.Count)
                    Avx.MaskLoad(src + i, Vector256.Load(mask + i).AsSingle()).Store(dst + i);
            }
        }

        /// <summary>Any other panel (strided convolutions, panels across images): which pixel each column reads, relative to
        /// its tap's origin in channel 0, and whether it lies inside the image depend only on the tap, so both are looked up
        /// once per panel and every row is a table lookup per column; walking output rows per row cost 1.5× the product.
        /// </summary>
        [SkipLocalsInit]
        private void PackIndexedPanel(float* panel, int width, int k0, int depth, int* runs, int runCount, int cols, int* masks)
        {
            int taps = _taps.Length, plane = _g.Height * _g.Width;
            int* offsets = stackalloc int[width];
            bool* inside = stackalloc bool[taps * width];
            for (int r = 0, j = 0; r < runCount; r++)
                for (int i = 0; i < runs[3 * r + 2]; i++, j++)
                {
                    int q = runs[3 * r + 1] + i;
                    offsets[j] = runs[3 * r] * _g.Channels * plane + (_positionOffsets == null ? q : _positionOffsets[q]);
                    for (int t = 0; t < taps; t++) inside[t * width + j] = masks[t * _g.ColumnCols + q] != 0;
                }
            var row = new RowIndex(k0, taps);
            for (int p = 0; p < depth; p++, row.Next())
            {
                float* origin = _images + (long)row.Channel * plane + _taps[row.Tap].Origin, dst = panel + (nint)p * width;
                bool* valid = inside + row.Tap * width;
                for (int j = 0; j < cols; j++) dst[j] = valid[j] ? origin[offsets[j]] : 0f;
                Zero(dst + cols, width - cols);
            }
        }

        /// <summary>Positions [start, start + count) of the image-major columns as runs inside one image, (image, first
        /// position, length) each; returns how many.</summary>
        private int Runs(int* runs, int start, int count)
        {
            int plane = _g.ColumnCols, runCount = 0;
            for (int n = start, end = start + count; n < end; runCount++)
            {
                int image = n / plane, first = n - image * plane, length = Math.Min(end - n, plane - first);
                (runs[3 * runCount], runs[3 * runCount + 1], runs[3 * runCount + 2]) = (image, first, length);
                n += length;
            }
            return runCount;
        }

        /// <summary>Column-matrix row <paramref name="row"/> at the positions of <paramref name="runs"/>, written contiguously
        /// to dst.</summary>
        private void GatherRow(float* dst, RowIndex row, int* runs, int runCount, int* masks)
        {
            var tap = _taps[row.Tap];
            int* tapMask = masks + row.Tap * _g.ColumnCols;
            for (int r = 0; r < runCount; r++)
            {
                float* image = _images + ((long)runs[3 * r] * _g.Channels + row.Channel) * _g.Height * _g.Width;
                int first = runs[3 * r + 1], length = runs[3 * r + 2];
                if (_positionOffsets == null) GatherShiftedRun(image, dst, tapMask, tap, _g, first, length);
                else
                    fixed (int* offsets = &_positionOffsets[first])
                    {
                        float* origin = image + tap.Origin;
                        int* inside = tapMask + first;
                        for (int i = 0; i < length; i++) dst[i] = inside[i] != 0 ? origin[offsets[i]] : 0f;
                    }
                dst += length;
            }
        }

        /// <summary>A column-matrix row as (channel, tap), advanced by counting rather than a division per row.</summary>
        private struct RowIndex(int row, int taps)
        {
            public int Channel = row / taps, Tap = row % taps;

            public void Next()
            {
                if (++Tap == taps)
                {
                    Tap = 0;
                    Channel++;
                }
            }
        }

        public void Dispose()
        {
            ArrayPool<int>.Shared.Return(_masks);
            if (_positionOffsets != null) ArrayPool<int>.Shared.Return(_positionOffsets);
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
