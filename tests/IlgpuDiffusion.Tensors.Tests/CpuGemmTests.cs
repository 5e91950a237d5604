using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Cpu;

namespace IlgpuDiffusion.Tensors.Tests;

public class CpuGemmTests
{
    /// <summary>One call's layout: leading dimensions padded by <paramref name="pad"/>, batch entries
    /// separated by a gap and the first one starting at an offset, so stray reads and writes show.</summary>
    private sealed record Case(bool TransA, bool TransB, int M, int N, int K, int Batch = 1,
        float Alpha = 1f, float Beta = 0f, int Pad = 0, int Offset = 0, int Gap = 0)
    {
        public int Lda => (TransA ? M : K) + Pad;
        public int Ldb => (TransB ? K : N) + Pad;
        public int Ldc => N + Pad;
        public int StrideA => (TransA ? K : M) * Lda + Gap;
        public int StrideB => (TransB ? N : K) * Ldb + Gap;
        public int StrideC => M * Ldc + Gap;

        public GemmArgs Args(CpuBuffer a, CpuBuffer b, CpuBuffer c, bool float64) =>
            new(M, N, K, new(new(a, Offset), Lda, TransA, StrideA), new(new(b, Offset), Ldb, TransB, StrideB),
                new(new(c, Offset), Ldc, BatchStride: StrideC))
            {
                Alpha = Alpha, Beta = Beta, Batch = Batch,
                Accumulation = float64 ? GemmAccumulation.Float64 : GemmAccumulation.Float32,
            };
    }

    private const float Tolerance = 1e-5f;

    /// <summary>2^-23, the spacing of floats at 1.</summary>
    private const double FloatEpsilon = 1.0 / (1 << 23);

    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 1 }, { 1, 7, 3 }, { 5, 1, 9 }, { 17, 31, 7 }, { 12, 32, 256 }, { 13, 33, 257 },
        { 67, 129, 65 }, { 49, 49, 8 }, { 32, 16, 600 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Matches_reference_for_all_transposes(int m, int n, int k)
    {
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
                Check(new Case(transA, transB, m, n, k));
    }

    [Theory]
    [InlineData(200, 70, 300)]   // several K blocks, split over cores
    [InlineData(1600, 40, 20)]   // more rows than one packed A block
    [InlineData(3, 4200, 100)]   // more columns than one packed B block
    public void Large_shapes_match_reference(int m, int n, int k)
    {
        Check(new Case(false, false, m, n, k, Alpha: 0.5f, Beta: 0.25f));
        Check(new Case(true, true, m, n, k, Pad: 3));
    }

    [Theory]
    [InlineData(1f, 0f)]
    [InlineData(1f, 1f)]
    [InlineData(-2f, 0.25f)]
    [InlineData(0.5f, -1f)]
    public void Alpha_and_beta_scale(float alpha, float beta)
    {
        Check(new Case(false, true, 19, 37, 23, Alpha: alpha, Beta: beta));
        Check(new Case(true, false, 67, 129, 65, Alpha: alpha, Beta: beta, Pad: 2));
    }

    [Theory]
    [InlineData(1, 49, 49, 8)]     // many tiny products: spread over cores by batch entry
    [InlineData(4, 32, 49, 72)]
    [InlineData(3, 17, 31, 7)]
    [InlineData(1, 130, 100, 80)]  // few large products: each split over cores
    public void Batches_with_strides_and_offsets(int batchScale, int m, int n, int k)
    {
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
                Check(new Case(transA, transB, m, n, k, Batch: 2 * batchScale, Alpha: 1.5f, Beta: 0.5f, Pad: 1, Offset: 5, Gap: 3));
    }

    [Fact]
    public void Beta_zero_ignores_NaN_in_c()
    {
        foreach (var shape in new[] { (17, 31, 7), (67, 129, 65), (150, 70, 300) })
        {
            var cs = new Case(false, false, shape.Item1, shape.Item2, shape.Item3, Batch: 2, Pad: 1, Gap: 2);
            Check(cs, initialC: float.NaN);
            Check(cs with { K = 0 }, initialC: float.NaN);
            Check(cs with { Alpha = 0f }, initialC: float.NaN);
        }
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    [InlineData(0.5f)]
    public void Zero_depth_or_zero_alpha_only_scales_c(float beta)
    {
        Check(new Case(false, false, 9, 11, 0, Batch: 3, Beta: beta, Pad: 2, Gap: 1));
        Check(new Case(true, true, 9, 11, 4, Batch: 3, Alpha: 0f, Beta: beta, Pad: 2, Gap: 1));
    }

    [Fact]
    public void Empty_output_is_a_no_op()
    {
        var one = new CpuBuffer(1);
        one.Data[0] = 1f;
        var c = new CpuBuffer(1);
        c.Data[0] = 7f;
        var args = new GemmArgs(0, 1, 1, Matrix(new CpuBuffer(0), 1), Matrix(one, 1), Matrix(c, 1))
        {
            Accumulation = GemmAccumulation.Float32,
        };
        CpuGemm.Run(args);
        CpuGemm.Run(args with { M = 1, A = Matrix(one, 1), Batch = 0 });
        Assert.Equal(7f, c.Data[0]);
    }

    [Fact]
    public void Rejects_operands_outside_their_arrays()
    {
        CpuBuffer a = new(6), b = new(6), c = new(4);
        // (2, 3) · (3, 2) into (2, 2), each operand as large as its array
        var fits = new GemmArgs(2, 2, 3, Matrix(a, 3), Matrix(b, 2), Matrix(c, 2)) { Accumulation = GemmAccumulation.Float32 };
        CpuGemm.Run(fits);
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Run(fits with { A = fits.A with { View = new(a, 1) } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Run(fits with { C = fits.C.Batched(1), Batch = 2 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Run(fits with { B = new(new(b, 0), 4, Transposed: true) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Run(fits with { C = Matrix(c, 1) }));
    }

    private static GemmOperand Matrix(CpuBuffer buffer, int ld) => GemmOperand.Matrix(new(buffer, 0), ld);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Float64_accumulation_rounds_once(int m, int n, int k)
    {
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
                Check(new Case(transA, transB, m, n, k, Batch: 2, Alpha: 0.5f, Beta: 0.25f, Pad: 1, Offset: 2, Gap: 1), float64: true);
        Check(new Case(false, false, 5, 6, 0, Beta: 0.5f), float64: true);
        Check(new Case(true, false, 9, 4, 3, Batch: 2), initialC: float.NaN, float64: true);
    }

    /// <summary>Runs the case on random data and compares every element of every array with a double
    /// precision triple loop; elements of C outside the matrices must keep their initial value. The float32
    /// kernel may err by a small multiple of ε · Σ|products|; float64 accumulation only by the final
    /// rounding(s) to float: ε/2 of the result, plus ε/2 of β · C when β is applied in float.</summary>
    private static void Check(Case cs, float initialC = 0.75f, bool float64 = false)
    {
        var rng = new Random(HashCode.Combine(cs.M, cs.N, cs.K, cs.Batch, cs.TransA, cs.TransB));
        var aBuffer = Random(rng, cs.Offset + cs.Batch * cs.StrideA);
        var bBuffer = Random(rng, cs.Offset + cs.Batch * cs.StrideB);
        var cBuffer = Random(rng, cs.Offset + cs.Batch * cs.StrideC);
        float[] a = aBuffer.Data, b = bBuffer.Data, c = cBuffer.Data;
        if (float.IsNaN(initialC))
            Array.Fill(c, float.NaN);
        float[] original = (float[])c.Clone();

        CpuGemm.Run(cs.Args(aBuffer, bBuffer, cBuffer, float64));

        var written = new bool[c.Length];
        for (int batch = 0; batch < cs.Batch; batch++)
        {
            int a0 = cs.Offset + batch * cs.StrideA, b0 = cs.Offset + batch * cs.StrideB, c0 = cs.Offset + batch * cs.StrideC;
            for (int i = 0; i < cs.M; i++)
            {
                for (int j = 0; j < cs.N; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int p = 0; p < cs.K; p++)
                    {
                        double product = (double)a[a0 + (cs.TransA ? p * cs.Lda + i : i * cs.Lda + p)]
                            * b[b0 + (cs.TransB ? j * cs.Ldb + p : p * cs.Ldb + j)];
                        sum += product;
                        magnitude += Math.Abs(product);
                    }
                    int at = c0 + i * cs.Ldc + j;
                    double expected = cs.Alpha * sum, scale = Math.Abs(cs.Alpha) * magnitude;
                    if (cs.Beta != 0f)
                    {
                        expected += cs.Beta * (double)original[at];
                        scale += Math.Abs(cs.Beta * (double)original[at]);
                    }
                    double error = Math.Abs(c[at] - expected);
                    double betaMagnitude = cs.Beta == 0f ? 0 : Math.Abs(cs.Beta * (double)original[at]);
                    double allowed = float64
                        ? FloatEpsilon * (Math.Abs(expected) + betaMagnitude) + 1e-12 * scale
                        : Tolerance * scale;
                    Assert.True(error <= allowed + 1e-30,
                        $"{cs}: batch {batch} C[{i},{j}] = {c[at]}, expected {expected} (error {error:E2}, scale {scale:E2})");
                    written[at] = true;
                }
            }
        }
        for (int at = 0; at < c.Length; at++)
            if (!written[at])
                Assert.True(original[at].Equals(c[at]), $"{cs}: C[{at}] outside the matrices changed");
    }

    private static CpuBuffer Random(Random rng, int length)
    {
        var buffer = new CpuBuffer(length);
        for (int i = 0; i < length; i++)
            buffer.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        return buffer;
    }
}
