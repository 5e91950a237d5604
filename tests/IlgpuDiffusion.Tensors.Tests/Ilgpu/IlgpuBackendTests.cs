using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;

namespace IlgpuDiffusion.Tensors.Tests.Ilgpu;

/// <summary>One ilgpu-cpu backend for the whole class, so every kernel compiles once.</summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    public IlgpuBackend Backend { get; } = IlgpuBackend.Create("ilgpu-cpu", 0);

    public void Dispose() => Backend.Dispose();
}

/// <summary>Every executor primitive on ILGPU's CPU accelerator against a naive host computation.
/// Shapes are tiny: the CPU accelerator costs about a millisecond per launch.</summary>
public sealed class IlgpuBackendTests(IlgpuCpuFixture fixture) : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuBackend backend = fixture.Backend;

    // ---- helpers ----

    private BufferView Buffer(float[] data, int offset = 0)
    {
        var buffer = backend.Allocate(data.Length + offset);
        var view = new BufferView(buffer, offset);
        backend.Upload(data, view);
        return view;
    }

    private BufferView IntBuffer(int[] data) => Buffer(data.Select(BitConverter.Int32BitsToSingle).ToArray());

    private BufferView Empty(int length, float fill = float.NaN)
    {
        var view = new BufferView(backend.Allocate(length), 0);
        backend.Fill(view, length, fill);
        return view;
    }

    private float[] Read(BufferView view, int length)
    {
        var result = new float[length];
        backend.Download(view, result);
        return result;
    }

    private int[] ReadInts(BufferView view, int length) => Read(view, length).Select(BitConverter.SingleToInt32Bits).ToArray();

    private static float[] Sequence(int n, int seed = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
    }

    private static void Near(float[] expected, float[] actual, float tolerance = 1e-5f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float allowed = tolerance * Math.Max(1f, Math.Abs(expected[i]));
            Assert.True(Math.Abs(expected[i] - actual[i]) <= allowed, $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    private static Dim6 D(params int[] values) => Dim6.From(values);

    // ---- devices ----

    [Fact]
    public void Enumerate_lists_the_cpu_accelerator()
    {
        var devices = IlgpuBackend.Enumerate();
        var cpu = Assert.Single(devices, d => d.Name == "ilgpu-cpu");
        Assert.True(cpu.ComputeUnits > 0);
        Assert.True(cpu.MemoryBytes > 0);
        Assert.Equal("ilgpu-cpu", backend.Info.Name);
    }

    [Fact]
    public void Absent_device_fails_listing_present_ones()
    {
        // The first CUDA index past those present: cuda:0 on a machine without a GPU.
        int absent = IlgpuBackend.Enumerate().Count(d => d.Name.StartsWith("cuda:", StringComparison.Ordinal));
        var error = Assert.Throws<ArgumentException>(() => IlgpuBackend.Create("cuda", absent));
        Assert.Contains($"cuda:{absent}", error.Message);
        Assert.Contains("ilgpu-cpu", error.Message);
    }

    // ---- memory ----

    [Fact]
    public void Upload_download_and_fill_respect_offsets()
    {
        var view = Buffer([1, 2, 3, 4, 5], offset: 3);
        Assert.Equal([1f, 2, 3, 4, 5], Read(view, 5));
        backend.Fill(view.At(1), 3, 7f);
        Assert.Equal([1f, 7, 7, 7, 5], Read(view, 5));
    }

    [Fact]
    public void Strided_copy_permutes()
    {
        // x (2, 3, 4) contiguous; y = x.permute(2, 0, 1), shape (4, 2, 3), written contiguously.
        var x = Sequence(24);
        var src = Buffer(x);
        var dst = Empty(24);
        backend.StridedCopy(src, D(1, 12, 4), dst, D(6, 3, 1), D(4, 2, 3), 3);
        var expected = new float[24];
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++)
                    expected[(k * 2 + i) * 3 + j] = x[(i * 3 + j) * 4 + k];
        Assert.Equal(expected, Read(dst, 24));
    }

    [Fact]
    public void Strided_copy_broadcasts_and_copies_contiguous_slices()
    {
        var src = Buffer([1, 2, 3, 4], offset: 2);
        var dst = Empty(12);
        backend.StridedCopy(src, D(0, 1), dst, D(4, 1), D(3, 4), 2);
        Assert.Equal([1f, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4], Read(dst, 12));

        // Contiguous (fast path) into the middle of a buffer.
        backend.StridedCopy(src.At(1), D(4, 1), dst.At(8), D(4, 1), D(1, 3), 2);
        Assert.Equal([1f, 2, 3, 4, 1, 2, 3, 4, 2, 3, 4, 4], Read(dst, 12));
    }

    // ---- elementwise ----

    private void CheckUnary<TOp>(float a, float b) where TOp : struct, IUnaryOp
    {
        var x = Sequence(37);
        var dy = Sequence(37, seed: 2);
        var y = x.Select(v => default(TOp).Apply(v, a, b)).ToArray();
        var xView = Buffer(x);
        var yView = Empty(37);
        backend.Unary<TOp>(xView, yView, 37, a, b);
        Near(y, Read(yView, 37));

        var dxView = Empty(37);
        backend.UnaryBackward<TOp>(xView, yView, Buffer(dy), dxView, 37, a, b);
        Near(x.Select((v, i) => dy[i] * default(TOp).Derivative(v, y[i], a, b)).ToArray(), Read(dxView, 37));
    }

    [Fact] public void Unary_affine() => CheckUnary<AffineOp>(1.5f, -0.25f);
    [Fact] public void Unary_exp() => CheckUnary<ExpOp>(0, 0);
    [Fact] public void Unary_silu() => CheckUnary<SiluOp>(0, 0);
    [Fact] public void Unary_tanh() => CheckUnary<TanhOp>(0, 0);
    [Fact] public void Unary_clamp() => CheckUnary<ClampOp>(-0.5f, 0.75f);
    [Fact] public void Unary_pow() => CheckUnary<PowOp>(2f, 0);

    [Fact]
    public void Unary_in_place()
    {
        var view = Buffer([1f, -2, 3]);
        backend.Unary<NegOp>(view, view, 3, 0, 0);
        Assert.Equal([-1f, 2, -3], Read(view, 3));
    }

    [Fact]
    public void Binary_broadcasts()
    {
        // a (2, 3, 4); b (3, 1) broadcast over dims 0 and 2.
        var a = Sequence(24);
        var b = new float[] { 1, 2, 4 };
        var y = Empty(24);
        backend.Binary<DivOp>(Buffer(a), D(12, 4, 1), Buffer(b), D(0, 1, 0), y, D(2, 3, 4), 3);
        Near(a.Select((v, i) => v / b[i / 4 % 3]).ToArray(), Read(y, 24));
    }

    [Fact]
    public void Binary_contiguous_and_scalar()
    {
        var a = Sequence(10);
        var b = Sequence(10, seed: 3);
        var y = Empty(10);
        backend.Binary<SubOp>(Buffer(a), D(5, 1), Buffer(b, offset: 1), D(5, 1), y, D(2, 5), 2);
        Near(a.Select((v, i) => v - b[i]).ToArray(), Read(y, 10));

        backend.Binary<MaximumOp>(Buffer(a), D(5, 1), Buffer([0.5f]), D(0, 0), y, D(2, 5), 2);
        Near(a.Select(v => MathF.Max(v, 0.5f)).ToArray(), Read(y, 10));
    }

    [Fact]
    public void Where_broadcasts_every_operand()
    {
        // y (2, 3, 4) = condition (3, 1) ≠ 0 ? a (2, 3, 4), at an offset : b (4); a NaN condition selects a.
        float[] condition = [1, 0, float.NaN];
        var a = Sequence(24);
        var b = Sequence(4, seed: 2);
        var y = Empty(24);
        backend.Where(Buffer(condition), D(0, 1, 0), Buffer(a, offset: 3), D(12, 4, 1), Buffer(b), D(0, 0, 1), y, D(2, 3, 4), 3);
        Assert.Equal(a.Select((v, i) => condition[i / 4 % 3] != 0f ? v : b[i % 4]).ToArray(), Read(y, 24));
    }

    // ---- reductions ----

    private static float[] HostReduce<TOp>(float[] x, int outer, int r, int inner) where TOp : struct, IReduceOp
    {
        var y = new float[outer * inner];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                float acc = default(TOp).Identity;
                for (int j = 0; j < r; j++) acc = default(TOp).Combine(acc, x[(o * r + j) * inner + i]);
                y[o * inner + i] = acc;
            }
        return y;
    }

    private void CheckReduce<TOp>(int outer, int r, int inner) where TOp : struct, IReduceOp
    {
        var x = Sequence(outer * r * inner);
        var y = Empty(outer * inner);
        backend.Reduce<TOp>(Buffer(x), y, outer, r, inner);
        Near(HostReduce<TOp>(x, outer, r, inner), Read(y, outer * inner), 1e-4f);
    }

    [Fact] public void Reduce_long_rows_sum() => CheckReduce<SumReduce>(3, 600, 1);
    [Fact] public void Reduce_long_rows_max() => CheckReduce<MaxReduce>(2, 300, 1);
    [Fact] public void Reduce_short_rows() => CheckReduce<SumReduce>(4, 7, 1);
    [Fact] public void Reduce_inner_sum() => CheckReduce<SumReduce>(2, 5, 3);
    [Fact] public void Reduce_inner_min() => CheckReduce<MinReduce>(3, 4, 5);

    [Theory]
    [InlineData(1, 3136, 7)]    // a bias gradient's shape: few outputs, a long reduction
    [InlineData(2, 1000, 3)]
    [InlineData(3, 997, 2)]     // a prime length cannot be cut: one pass
    public void Chunked_reductions_match_one_pass(int outer, int r, int inner)
    {
        int chunks = IlgpuBackend.ReductionChunks(outer * inner, r);
        Assert.Equal(r == 997, chunks == 1);
        Assert.Equal(0, r % chunks);
        backend.ChunkedReductions = true;
        try
        {
            CheckReduce<SumReduce>(outer, r, inner);
            CheckReduce<MaxReduce>(outer, r, inner);
        }
        finally
        {
            backend.ChunkedReductions = false;
        }
    }

    [Fact]
    public void Arg_reduce_takes_the_first_of_ties()
    {
        // (outer 2, r 4, inner 2)
        float[] x = [1, 5, 3, 5, 3, 0, 2, 5,
                     -1, 0, -1, 0, 7, 0, 7, -3];
        var indices = Empty(4);
        backend.ArgReduce(Buffer(x), indices, 2, 4, 2, min: false);
        Assert.Equal([1, 0, 2, 0], ReadInts(indices, 4));
        backend.ArgReduce(Buffer(x), indices, 2, 4, 2, min: true);
        Assert.Equal([0, 2, 0, 3], ReadInts(indices, 4));
    }

    // ---- GEMM ----

    private static float[] HostGemm(in GemmArgs g, float[] a, float[] b, float[] c)
    {
        var result = (float[])c.Clone();
        for (int batch = 0; batch < g.Batch; batch++)
            for (int m = 0; m < g.M; m++)
                for (int n = 0; n < g.N; n++)
                {
                    double sum = 0;
                    for (int k = 0; k < g.K; k++)
                    {
                        float av = a[batch * g.A.BatchStride + (g.A.Transposed ? k * g.A.Ld + m : m * g.A.Ld + k)];
                        float bv = b[batch * g.B.BatchStride + (g.B.Transposed ? n * g.B.Ld + k : k * g.B.Ld + n)];
                        sum += (double)av * bv;
                    }
                    int ci = batch * g.C.BatchStride + m * g.C.Ld + n;
                    result[ci] = (float)(g.Alpha * sum + (g.Beta == 0 ? 0 : g.Beta * c[ci]));
                }
        return result;
    }

    private void CheckGemm(bool transA, bool transB, int m, int n, int k, int batch, float alpha, float beta,
        GemmAccumulation accumulation = GemmAccumulation.Float32, float tolerance = 1e-4f)
    {
        // Leading dimensions one wider than needed and batch strides with a gap, to catch index slips.
        int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 1, ldc = n + 2;
        int strideA = (transA ? k : m) * lda + 3, strideB = (transB ? n : k) * ldb + 1, strideC = m * ldc + 5;
        var a = Sequence(strideA * batch, seed: 4);
        var b = Sequence(strideB * batch, seed: 5);
        var c = Sequence(strideC * batch, seed: 6);
        if (beta == 0) Array.Fill(c, float.NaN); // must not be read
        var cView = Buffer(c, offset: 2);
        var args = new GemmArgs(m, n, k, new(Buffer(a, offset: 1), lda, transA, strideA), new(Buffer(b), ldb, transB, strideB),
            new(cView, ldc, BatchStride: strideC))
        { Alpha = alpha, Beta = beta, Batch = batch, Accumulation = accumulation };
        backend.Gemm(args);
        var expected = HostGemm(args, a, b, c);
        var actual = Read(cView, c.Length);
        // Padding between rows and batches keeps its original contents (NaN when β = 0).
        for (int i = 0; i < c.Length; i++)
        {
            if (float.IsNaN(expected[i])) Assert.True(float.IsNaN(actual[i]), $"padding {i} was written");
            else Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1f, Math.Abs(expected[i])),
                $"C[{i}]: expected {expected[i]}, got {actual[i]}");
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Gemm_small_edges_all_transposes(bool transA, bool transB)
    {
        CheckGemm(transA, transB, 5, 7, 3, batch: 2, alpha: 1.5f, beta: 0f);
        CheckGemm(transA, transB, 5, 7, 3, batch: 1, alpha: 1f, beta: 0.5f);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Gemm_crosses_tile_and_depth_steps(bool transA, bool transB) =>
        CheckGemm(transA, transB, 131, 130, 19, batch: 1, alpha: 0.75f, beta: 0f);

    /// <summary>One C tile and a long K: the product is split over several groups, whose partials are summed
    /// (β applied once, at the end); the last range is shorter than the others.</summary>
    [Theory]
    [InlineData(false, true, 0f)]
    [InlineData(true, false, 0.25f)]
    public void Gemm_splits_a_long_depth(bool transA, bool transB, float beta) =>
        CheckGemm(transA, transB, 7, 8, 4 * IlgpuBackend.MinSplitDepth + 5, batch: 1, alpha: 0.5f, beta: beta);

    /// <summary>Without float64 the split-K partials are summed in float with compensation: one C element split in four
    /// ranges whose partials are 2^24, 1, −2^24, 1 (each exact) sums to 2, where plain float addition gives 1.</summary>
    [SkippableFact]
    public void Gemm_split_sums_are_compensated_without_float64()
    {
        Skip.If(backend.Info.ComputeUnits < 2, "four splits of one tile need at least two multiprocessors");
        const int depth = 4 * IlgpuBackend.MinSplitDepth;
        var a = new float[depth];
        float[] partials = [16777216f, 1f, -16777216f, 1f];
        for (int range = 0; range < 4; range++) a[range * IlgpuBackend.MinSplitDepth] = partials[range];
        var c = Empty(1);
        var args = new GemmArgs(1, 1, depth, new(Buffer(a), depth), new(Buffer(Enumerable.Repeat(1f, depth).ToArray()), 1), new(c, 1));
        backend.Float64 = false;
        try
        {
            backend.Gemm(args);
        }
        finally
        {
            backend.Float64 = true;
        }
        Assert.Equal(2f, Read(c, 1)[0]);
    }

    /// <summary>Without float64, float64 accumulation runs in float-float: (1 + 2⁻¹²)² − (1 + 2⁻¹¹) is 2⁻²⁴ exactly,
    /// which the float product (rounded to 1 + 2⁻¹¹) loses, and a long cancelling product comes out bit for bit as the
    /// double kernel's, where float32 accumulation does not.</summary>
    [Fact]
    public void Gemm_float64_accumulation_runs_in_float_float_without_float64()
    {
        float[] Product(float[] a, float[] b, int m, int n, int k, bool float64, GemmAccumulation accumulation)
        {
            var c = Empty(m * n);
            backend.Float64 = float64;
            try
            {
                backend.Gemm(new GemmArgs(m, n, k, new(Buffer(a), k), new(Buffer(b), n), new(c, n)) { Accumulation = accumulation });
            }
            finally
            {
                backend.Float64 = true;
            }
            return Read(c, m * n);
        }

        float x = 1f + MathF.Pow(2, -12);
        Assert.Equal(MathF.Pow(2, -24), Product([x, -(1f + MathF.Pow(2, -11))], [x, 1f], 1, 1, 2, false, GemmAccumulation.Float64)[0]);

        const int m = 3, n = 4, depth = 3000;
        var left = Sequence(m * depth, seed: 7);
        var right = Sequence(depth * n, seed: 8);
        var inDouble = Product(left, right, m, n, depth, true, GemmAccumulation.Float64);
        Assert.Equal(inDouble, Product(left, right, m, n, depth, false, GemmAccumulation.Float64));
        Assert.NotEqual(inDouble, Product(left, right, m, n, depth, false, GemmAccumulation.Float32));
        backend.Float64 = false;
        try
        {
            Gemm_float64_accumulation_rounds_once();
        }
        finally
        {
            backend.Float64 = true;
        }
    }

    [Fact]
    public void Gemm_float64_accumulation_rounds_once()
    {
        foreach (var (transA, transB) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            CheckGemm(transA, transB, 5, 7, 300, batch: 2, alpha: 1.5f, beta: 0f, GemmAccumulation.Float64, tolerance: 2.5e-7f);
            CheckGemm(transA, transB, 9, 3, 17, batch: 1, alpha: 1f, beta: 0.5f, GemmAccumulation.Float64, tolerance: 2.5e-7f);
        }
    }

    // ---- softmax ----

    private static float[] HostSoftmax(float[] x, int rows, int cols)
    {
        var y = new float[x.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * cols, cols);
            double max = row.ToArray().Max(), sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            for (int j = 0; j < cols; j++) y[r * cols + j] = (float)(Math.Exp(row[j] - max) / sum);
        }
        return y;
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(2, 300)]
    public void Softmax_rows_including_large_values(int rows, int cols)
    {
        var x = Sequence(rows * cols);
        for (int j = 0; j < cols; j++) x[j] += 1000f; // exp(1000) overflows without the max shift
        var y = Empty(rows * cols);
        backend.Softmax(Buffer(x), y, rows, cols);
        var expected = HostSoftmax(x, rows, cols);
        Near(expected, Read(y, rows * cols));

        var dy = Sequence(rows * cols, seed: 7);
        var dx = Empty(rows * cols);
        backend.SoftmaxBackward(Buffer(expected), Buffer(dy), dx, rows, cols);
        var expectedDx = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += dy[r * cols + j] * expected[r * cols + j];
            for (int j = 0; j < cols; j++) expectedDx[r * cols + j] = (float)(expected[r * cols + j] * (dy[r * cols + j] - dot));
        }
        Near(expectedDx, Read(dx, rows * cols), 1e-4f);
    }

    // ---- indexing ----

    [Fact]
    public void Index_select_and_index_add_with_repeated_indices()
    {
        const int outer = 2, n = 4, k = 5, inner = 3;
        int[] idx = [3, 0, 3, 1, 3];
        var x = Sequence(outer * n * inner);
        var y = Empty(outer * k * inner);
        backend.IndexSelect(Buffer(x), IntBuffer(idx), y, outer, n, k, inner);
        var expectedY = new float[outer * k * inner];
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < k; j++)
                for (int i = 0; i < inner; i++)
                    expectedY[(o * k + j) * inner + i] = x[(o * n + idx[j]) * inner + i];
        Assert.Equal(expectedY, Read(y, expectedY.Length));

        var dy = Sequence(outer * k * inner, seed: 8);
        var dxInitial = Sequence(outer * n * inner, seed: 9);
        var dx = Buffer(dxInitial);
        backend.IndexAdd(Buffer(dy), IntBuffer(idx), dx, outer, n, k, inner);
        var expectedDx = (float[])dxInitial.Clone();
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < k; j++)
                for (int i = 0; i < inner; i++)
                    expectedDx[(o * n + idx[j]) * inner + i] += dy[(o * k + j) * inner + i];
        Near(expectedDx, Read(dx, expectedDx.Length));
    }

    // ---- optimiser and random numbers ----

    [Fact]
    public void Adam_step_matches_the_formula()
    {
        const int n = 9;
        const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weightDecay = 0.01f, lr = 1e-3f;
        const int step = 3;
        float stepSize = lr / (1 - MathF.Pow(beta1, step)), sqrtBc2 = MathF.Sqrt(1 - MathF.Pow(beta2, step));
        var p = Sequence(n, 11);
        var g = Sequence(n, 12);
        var m = Sequence(n, 13).Select(v => v * 0.1f).ToArray();
        var v = Sequence(n, 14).Select(x => x * x * 0.01f).ToArray();
        BufferView pv = Buffer(p), gv = Buffer(g), mv = Buffer(m), vv = Buffer(v);
        backend.AdamStep(pv, gv, mv, vv, n, beta1, beta2, eps, weightDecay, stepSize, sqrtBc2);

        var expectedP = new float[n];
        var expectedM = new float[n];
        var expectedV = new float[n];
        for (int i = 0; i < n; i++)
        {
            float grad = g[i] + weightDecay * p[i];
            expectedM[i] = beta1 * m[i] + (1 - beta1) * grad;
            expectedV[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
            expectedP[i] = p[i] - stepSize * expectedM[i] / (MathF.Sqrt(expectedV[i]) / sqrtBc2 + eps);
        }
        Near(expectedP, Read(pv, n));
        Near(expectedM, Read(mv, n));
        Near(expectedV, Read(vv, n));
        Assert.Equal(g, Read(gv, n));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fill_random_matches_host_philox(bool normal)
    {
        const int n = 40;
        const ulong seed = 0x1234_5678_9ABC_DEF0, counterBase = uint.MaxValue - 5; // crosses into the high counter word
        var y = Empty(n + 3);
        backend.FillRandom(y.At(3), n, seed, counterBase, normal);
        var expected = Enumerable.Range(0, n)
            .Select(i => normal ? Philox.Normal(seed, counterBase + (ulong)i) : Philox.Uniform(seed, counterBase + (ulong)i))
            .ToArray();
        if (normal) Near(expected, Read(y.At(3), n));
        else Assert.Equal(expected, Read(y.At(3), n));
    }
}
