using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Cpu;

namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>
/// The fused attention primitives against the composed path (Softmax(Q·Kᵀ·scale)·V through tensor ops on the cpu
/// executor, whose backward is the GEMM and softmax rules): the managed executor's grouped version, and the ILGPU
/// kernels on ilgpu-cpu through <see cref="Tensor.ScaledDotProductAttention"/>. Shapes cover cross attention (Lq ≠ Lk),
/// lengths that are not multiples of the 16- and 32-row tiles, head dims on both sides of 64 and several tiles.
/// </summary>
public class AttentionTests
{
    private const double Tolerance = 1e-5;

    public static TheoryData<int, int, int, int> Shapes => new()
    {
        // bh, lq, lk, d
        { 2, 5, 7, 8 },
        { 3, 33, 17, 16 },
        { 2, 16, 48, 64 },
        { 1, 40, 23, 100 },
        { 1, 300, 300, 16 },
    };

    /// <summary>With the 7×7 latents' problems (many, each held in one core's cache by the managed executor) and problems
    /// too large for one group of scores on the managed executor (too slow for ilgpu-cpu).</summary>
    public static TheoryData<int, int, int, int> ManagedShapes
    {
        get
        {
            var shapes = Shapes;
            shapes.Add(40, 49, 49, 16);
            shapes.Add(3, 700, 600, 16);
            return shapes;
        }
    }

    private sealed record Result(float[] Output, float[] Dq, float[] Dk, float[] Dv);

    private static float[] Values(int n, int seed, float range)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * range).ToArray();
    }

    /// <summary>Deterministic q, k, v, an upstream gradient, and a scale of 1/sqrt(d) as in multi-head attention.</summary>
    private static (float[] Q, float[] K, float[] V, float[] DO, float Scale) Inputs(int bh, int lq, int lk, int d) =>
        (Values(bh * lq * d, 1, 2f), Values(bh * lk * d, 2, 2f), Values(bh * lk * d, 3, 1f), Values(bh * lq * d, 4, 1f),
            1f / MathF.Sqrt(d));

    /// <summary>Output and input gradients of ScaledDotProductAttention on <paramref name="device"/>, for
    /// (bh, L, D) operands viewed as (2, bh/2, L, D) when bh is even, so leading dims get flattened.</summary>
    private static Result ThroughTensors(Device device, int bh, int lq, int lk, int d) =>
        Run(device, bh, lq, lk, d, (q, k, v, scale) => Tensor.ScaledDotProductAttention(q, k, v, scale));

    /// <summary>The composed path on the cpu executor: GEMMs and a softmax, each with its own backward rule.</summary>
    private static Result Composed(int bh, int lq, int lk, int d) =>
        Run(Device.Cpu, bh, lq, lk, d, (q, k, v, scale) => q.Mul(scale).MatmulTransposed(k).Softmax(-1).Matmul(v));

    private static Result Run(Device device, int bh, int lq, int lk, int d, Func<Tensor, Tensor, Tensor, float, Tensor> attention)
    {
        var (qValues, kValues, vValues, dOValues, scale) = Inputs(bh, lq, lk, d);
        int[] Shape(int l) => bh % 2 == 0 ? [2, bh / 2, l, d] : [bh, l, d];
        using var scope = new TensorScope();
        var q = Tensor.FromArray(qValues, Shape(lq), device);
        var k = Tensor.FromArray(kValues, Shape(lk), device);
        var v = Tensor.FromArray(vValues, Shape(lk), device);
        foreach (var t in new[] { q, k, v }) t.RequiresGrad = true;
        var o = attention(q, k, v, scale);
        o.Backward(Tensor.FromArray(dOValues, Shape(lq), device));
        return new Result(o.ToArray(), q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray());
    }

    private static void Close(Result expected, Result actual, string what)
    {
        var comparisons = new[]
        {
            ("output", expected.Output, actual.Output), ("dq", expected.Dq, actual.Dq), ("dk", expected.Dk, actual.Dk),
            ("dv", expected.Dv, actual.Dv),
        };
        foreach (var (name, e, a) in comparisons)
        {
            double error = OpChecks.RelativeL2(a, e);
            Assert.True(error < Tolerance, $"{what}: {name} differs from the composed path by {error:E2} (relative L2)");
        }
    }

    [Fact]
    public void The_managed_and_ilgpu_executors_prefer_the_fused_path()
    {
        Assert.True(Device.Cpu.Backend.PrefersFusedAttention);
        Assert.True(Device.Get("ilgpu-cpu").Backend.PrefersFusedAttention);
    }

    [Theory]
    [MemberData(nameof(ManagedShapes))]
    public void Cpu_primitives_match_the_composed_path(int bh, int lq, int lk, int d)
    {
        var (qValues, kValues, vValues, dOValues, scale) = Inputs(bh, lq, lk, d);
        var backend = new CpuBackend();
        BufferView Buffer(float[] values)
        {
            var view = new BufferView(backend.Allocate(values.Length), 0);
            backend.Upload(values, view);
            return view;
        }
        float[] Read(BufferView view, int n)
        {
            var values = new float[n];
            backend.Download(view, values);
            return values;
        }
        BufferView q = Buffer(qValues), k = Buffer(kValues), v = Buffer(vValues), dO = Buffer(dOValues);
        BufferView o = Buffer(new float[bh * lq * d]), logSumExp = Buffer(new float[bh * lq]);
        BufferView dq = Buffer(new float[bh * lq * d]), dk = Buffer(new float[bh * lk * d]), dv = Buffer(new float[bh * lk * d]);
        backend.AttentionForward(q, k, v, o, logSumExp, bh, lq, lk, d, scale);
        backend.AttentionBackward(q, k, v, o, dO, logSumExp, dq, dk, dv, bh, lq, lk, d, scale);

        var actual = new Result(Read(o, bh * lq * d), Read(dq, bh * lq * d), Read(dk, bh * lk * d), Read(dv, bh * lk * d));
        Close(Composed(bh, lq, lk, d), actual, "cpu primitives");

        // log-sum-exp of the scaled scores, in double
        var lse = Read(logSumExp, bh * lq);
        for (int row = 0; row < bh * lq; row += 7)
        {
            int b = row / lq;
            var scores = Enumerable.Range(0, lk).Select(j =>
                scale * Enumerable.Range(0, d).Sum(c => (double)qValues[row * d + c] * kValues[(b * lk + j) * d + c])).ToArray();
            double max = scores.Max();
            double expected = max + Math.Log(scores.Sum(s => Math.Exp(s - max)));
            Assert.True(Math.Abs(lse[row] - expected) < 1e-5 * Math.Max(1, Math.Abs(expected)),
                $"row {row}: log-sum-exp {lse[row]}, expected {expected}");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Ilgpu_fused_kernels_match_the_composed_path(int bh, int lq, int lk, int d) =>
        Close(Composed(bh, lq, lk, d), ThroughTensors(Device.Get("ilgpu-cpu"), bh, lq, lk, d), "ilgpu-cpu fused");

    /// <summary>The GPU tiles (<see cref="Backends.Ilgpu.GpuAttentionTile"/>), which ilgpu-cpu does not run, on OpenCL
    /// (in CI rusticl's llvmpipe).</summary>
    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void OpenCL_fused_kernels_match_the_composed_path(int bh, int lq, int lk, int d) =>
        Close(Composed(bh, lq, lk, d), ThroughTensors(TestDevices.Open("opencl"), bh, lq, lk, d), "opencl fused");

    [Fact]
    public void Head_dims_past_the_fused_limit_take_the_composed_path()
    {
        int d = IBackend.MaxFusedAttentionHeadDim + 3;
        Close(Composed(2, 5, 6, d), ThroughTensors(Device.Get("ilgpu-cpu"), 2, 5, 6, d), "ilgpu-cpu composed");
    }
}
