using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Cpu;
using IlgpuDiffusion.Tensors.Tests.Ilgpu;

namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>im2col and col2im of every executor against a naive gather and scatter, over the geometries the
/// convolutions use: "same" and valid padding, strides, asymmetric padding, whole batches in one matrix
/// (BatchInner) and bands of output rows that add into their image (Accumulate); and the product over gathered
/// patches of executors that skip the column matrix, against the same naive gather.</summary>
public sealed class ConvLoweringTests(IlgpuCpuFixture ilgpu) : IClassFixture<IlgpuCpuFixture>
{
    private IBackend Backend(string executor) => executor == "cpu" ? new CpuBackend() : ilgpu.Backend;

    public static TheoryData<string, ConvGeometry> Cases()
    {
        ConvGeometry[] geometries =
        [
            // 3x3, stride 2, padding 1 on a 5x6 image: OutH = 3, OutW = 3.
            new(Batch: 2, Channels: 2, Height: 5, Width: 6, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutH: 3, OutW: 3),
            // 2x3 kernel, strides (1, 2), padding top 0 / left 1 with extra bottom and right padding.
            new(Batch: 1, Channels: 3, Height: 4, Width: 5, KH: 2, KW: 3, StrideH: 1, StrideW: 2, PadH: 0, PadW: 1, OutH: 4, OutW: 3),
            // "same" 3x3 (the cpu's vectorised shifted-plane path) on rows narrower and wider than a vector, per image and
            // as one batch matrix; 3 columns take the row-by-row path
            new(Batch: 2, Channels: 2, Height: 4, Width: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, OutH: 4, OutW: 3),
            new(Batch: 2, Channels: 3, Height: 7, Width: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, OutH: 7, OutW: 7),
            new(Batch: 2, Channels: 2, Height: 9, Width: 11, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, OutH: 9, OutW: 11),
            new(Batch: 3, Channels: 2, Height: 5, Width: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, OutH: 5, OutW: 4)
                { BatchInner = true },
            // 1x1, and 4x4 stride 2 padding 1 (the down-sampling convolutions)
            new(Batch: 2, Channels: 3, Height: 3, Width: 9, KH: 1, KW: 1, StrideH: 1, StrideW: 1, PadH: 0, PadW: 0, OutH: 3, OutW: 9)
                { BatchInner = true },
            // 5x5 padding 2 on 14 columns: two padding columns on each side
            new(Batch: 1, Channels: 2, Height: 6, Width: 14, KH: 5, KW: 5, StrideH: 1, StrideW: 1, PadH: 2, PadW: 2, OutH: 6, OutW: 14)
                { BatchInner = true },
            new(Batch: 2, Channels: 2, Height: 8, Width: 8, KH: 4, KW: 4, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutH: 4, OutW: 4)
                { BatchInner = true },
            // a later band of output rows of a "same" 3x3: the top padding shifted past the image's top, added into it
            new(Batch: 1, Channels: 2, Height: 6, Width: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: -2, PadW: 1, OutH: 3, OutW: 40)
                { BatchInner = true, Accumulate = true },
        ];
        var cases = new TheoryData<string, ConvGeometry>();
        foreach (var executor in new[] { "cpu", "ilgpu-cpu" })
            foreach (var g in geometries) cases.Add(executor, g);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Im2col_gathers_and_col2im_scatters_every_tap(string executor, ConvGeometry g)
    {
        var backend = Backend(executor);
        var x = Sequence(g.Batch * g.Channels * g.Height * g.Width, seed: 1);
        int columnCount = g.Batch * g.ColumnsPerImage;
        var cols = Upload(backend, Enumerable.Repeat(float.NaN, columnCount).ToArray()); // every entry must be written
        backend.Im2Col(Upload(backend, x), cols, g);
        Assert.Equal(Gather(x, g), Read(backend, cols, columnCount));

        var columnGradient = Sequence(columnCount, seed: 2);
        // without Accumulate col2im overwrites every pixel (NaN shows a missed one); with it, it adds to them
        var initial = g.Accumulate ? Sequence(x.Length, seed: 3) : Enumerable.Repeat(float.NaN, x.Length).ToArray();
        var dx = Upload(backend, initial);
        backend.Col2Im(Upload(backend, columnGradient), dx, g);
        var expected = Scatter(columnGradient, g, g.Accumulate ? initial : new float[x.Length]);
        var actual = Read(backend, dx, x.Length);
        for (int i = 0; i < x.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i])),
                $"pixel {i}: expected {expected[i]}, got {actual[i]}");
    }

    public static TheoryData<string, ConvGeometry> ProductCases()
    {
        var cases = Cases();
        // several K blocks and A panels, panels straddling images, one product large enough to split over cores, and
        // panels inside one image under 3×3 and 5×5 taps (the cpu's masked-load path for "same" convolutions)
        foreach (var executor in new[] { "cpu", "ilgpu-cpu" })
        {
            cases.Add(executor, new(Batch: 3, Channels: 40, Height: 7, Width: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
                PadH: 1, PadW: 1, OutH: 7, OutW: 7));
            cases.Add(executor, new(Batch: 4, Channels: 64, Height: 9, Width: 9, KH: 4, KW: 4, StrideH: 2, StrideW: 2,
                PadH: 1, PadW: 1, OutH: 4, OutW: 4));
            cases.Add(executor, new(Batch: 5, Channels: 64, Height: 9, Width: 9, KH: 3, KW: 3, StrideH: 1, StrideW: 1,
                PadH: 1, PadW: 1, OutH: 9, OutW: 9));
            cases.Add(executor, new(Batch: 2, Channels: 3, Height: 10, Width: 10, KH: 5, KW: 5, StrideH: 1, StrideW: 1,
                PadH: 2, PadW: 2, OutH: 10, OutW: 10));
        }
        return cases;
    }

    [SkippableTheory]
    [MemberData(nameof(ProductCases))]
    public void Conv_gemm_multiplies_the_gathered_patches(string executor, ConvGeometry geometry)
    {
        var backend = Backend(executor);
        Skip.IfNot(backend.GathersConvPatches, $"{executor} builds column matrices (GathersConvPatches is false)");
        var g = geometry with { BatchInner = true, Accumulate = false };
        const int m = 13;
        int rows = g.ColumnRows, columns = g.Batch * g.ColumnCols;
        var x = Upload(backend, Sequence(g.Batch * g.Channels * g.Height * g.Width, seed: 4));
        var cols = Gather(Read(backend, x, g.Batch * g.Channels * g.Height * g.Width), g);
        foreach (bool transposed in new[] { false, true })
        {
            // c (m, n) = a (m, k) · P, or a · Pᵀ
            var (n, k) = transposed ? (rows, columns) : (columns, rows);
            var a = Sequence(m * k, seed: 5);
            var c = Upload(backend, Enumerable.Repeat(float.NaN, m * n + 1).ToArray()); // the element after c stays NaN
            backend.ConvGemm(Upload(backend, a), x, c, m, g, transposed);
            var actual = Read(backend, c, m * n + 1);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double expected = 0, scale = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double term = (double)a[i * k + p] * (transposed ? cols[j * columns + p] : cols[p * columns + j]);
                        (expected, scale) = (expected + term, scale + Math.Abs(term));
                    }
                    Assert.True(Math.Abs(actual[i * n + j] - expected) <= 1e-6 * Math.Max(1, scale),
                        $"{(transposed ? "a·Pᵀ" : "a·P")}[{i}, {j}]: expected {expected}, got {actual[i * n + j]}");
                }
            Assert.True(float.IsNaN(actual[m * n]), "the product wrote past its end");
        }
    }

    private static int ColumnIndex(in ConvGeometry g, int b, int row, int oh, int ow) =>
        b * g.ImageStride + row * g.RowStride + oh * g.OutW + ow;

    private static float[] Gather(float[] x, ConvGeometry g)
    {
        var cols = new float[g.Batch * g.ColumnsPerImage];
        ForEachTap(g, (b, c, row, oh, ow, h, w) => cols[ColumnIndex(g, b, row, oh, ow)] =
            h >= 0 && h < g.Height && w >= 0 && w < g.Width ? x[((b * g.Channels + c) * g.Height + h) * g.Width + w] : 0f);
        return cols;
    }

    private static float[] Scatter(float[] cols, ConvGeometry g, float[] initial)
    {
        var dx = (float[])initial.Clone();
        ForEachTap(g, (b, c, row, oh, ow, h, w) =>
        {
            if (h >= 0 && h < g.Height && w >= 0 && w < g.Width)
                dx[((b * g.Channels + c) * g.Height + h) * g.Width + w] += cols[ColumnIndex(g, b, row, oh, ow)];
        });
        return dx;
    }

    private delegate void Tap(int b, int c, int row, int oh, int ow, int h, int w);

    private static void ForEachTap(ConvGeometry g, Tap tap)
    {
        for (int b = 0; b < g.Batch; b++)
            for (int c = 0; c < g.Channels; c++)
                for (int kh = 0; kh < g.KH; kh++)
                    for (int kw = 0; kw < g.KW; kw++)
                        for (int oh = 0; oh < g.OutH; oh++)
                            for (int ow = 0; ow < g.OutW; ow++)
                                tap(b, c, (c * g.KH + kh) * g.KW + kw, oh, ow, oh * g.StrideH - g.PadH + kh, ow * g.StrideW - g.PadW + kw);
    }

    private static float[] Sequence(int n, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
    }

    private static BufferView Upload(IBackend backend, float[] data)
    {
        var view = new BufferView(backend.Allocate(data.Length), 0);
        backend.Upload(data, view);
        return view;
    }

    private static float[] Read(IBackend backend, BufferView view, int length)
    {
        var result = new float[length];
        backend.Download(view, result);
        return result;
    }
}
