using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>Executor-level speed: SGEMM and elementwise bandwidth, with the project's targets as ratios.</summary>
internal static class EngineBenchmarks
{
    /// <summary>Before a GEMM variant is timed, its result on an edge-heavy shape (1000 x 1001 x 999) is compared
    /// with float64 accumulation on the same device: a wrong kernel shows here, not as a fast number.</summary>
    private static void CheckGemm(Device device, Generator gen, bool transA, bool transB)
    {
        const int m = 1000, n = 1001, k = 999;
        using var scope = new TensorScope();
        var a = Tensor.Randn(transA ? [k, m] : [m, k], gen, device);
        var b = Tensor.Randn(transB ? [n, k] : [k, n], gen, device);
        var c = Tensor.Zeros([m, n], device);
        var exact = Tensor.Zeros([m, n], device);
        var args = new GemmArgs(m, n, k, new(a.View, a.Size(1), transA), new(b.View, b.Size(1), transB), GemmOperand.Matrix(c.View, n))
        {
            Accumulation = GemmAccumulation.Float32,
        };
        device.Backend.Gemm(args);
        device.Backend.Gemm(args with { C = args.C with { View = exact.View }, Accumulation = GemmAccumulation.Float64 });
        double error = IlgpuDiffusion.Tensors.Parity.TensorComparison.RelativeL2(c.ToArray(), exact.ToArray());
        Console.WriteLine($"{device.Name,-10} sgemm {m}x{n}x{k}{(transA ? " Aᵀ" : "")}{(transB ? " Bᵀ" : "")} "
            + $"vs float64 accumulation: rel L2 {error:E2}{(error > 1e-5 ? "  WRONG" : "")}");
    }

    public static void Run(Device device)
    {
        bool gpu = !device.IsCpu;
        int n = gpu ? 4096 : 1024;
        double gemmTarget = gpu ? 25_000 : 80; // GFLOP/s: issue targets (H100/H200 for GPUs, the 2-core CI machine for cpu)
        double bandwidthTarget = gpu ? 2_500 : 20; // GB/s
        using var scope = new TensorScope();
        var gen = new Generator(1);
        var a = Tensor.Randn([n, n], gen, device);
        var b = Tensor.Randn([n, n], gen, device);
        var c = Tensor.Zeros([n, n], device);
        foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true) })
        {
            CheckGemm(device, gen, ta, tb);
            var args = new GemmArgs(n, n, n, new(a.View, n, ta), new(b.View, n, tb), GemmOperand.Matrix(c.View, n))
            {
                Accumulation = GemmAccumulation.Float32,
            };
            double ms = Timing.MedianMilliseconds(device, () => device.Backend.Gemm(args));
            double gflops = 2.0 * n * n * n / (ms * 1e6);
            Timing.Report(device.Name, $"sgemm {n}x{n}x{n}{(ta ? " Aᵀ" : "")}{(tb ? " Bᵀ" : "")}", ms, $"{gflops,8:F1} GFLOP/s",
                $"target {gemmTarget} → {gflops / gemmTarget:F2}x");
        }

        int count = gpu ? 1 << 26 : 1 << 23;
        var x = Tensor.Randn([count], gen, device);
        var y = Tensor.Randn([count], gen, device);
        var z = Tensor.Zeros([count], device);
        var one = Dim6.From([1]);
        var shape = Dim6.From([count]);
        double addMs = Timing.MedianMilliseconds(device, () => device.Backend.Binary<AddOp>(x.View, one, y.View, one, z.View, shape, 1));
        double addGbs = 12.0 * count / (addMs * 1e6);
        Timing.Report(device.Name, $"add {count:N0} floats (2 reads + 1 write)", addMs, $"{addGbs,8:F1} GB/s",
            $"target {bandwidthTarget} → {addGbs / bandwidthTarget:F2}x");
        double siluMs = Timing.MedianMilliseconds(device, () => device.Backend.Unary<SiluOp>(x.View, z.View, count, 0, 0));
        Timing.Report(device.Name, $"silu {count:N0} floats", siluMs, $"{8.0 * count / (siluMs * 1e6),8:F1} GB/s");

        // Per-op cost on the host, which bounds steps made of many small ops: 1000 additions of 64-element
        // tensors through the executor alone, and through the tensor layer with autograd recording.
        const int ops = 1000;
        var small = Tensor.Randn([64], gen, device);
        small.RequiresGrad = true;
        var sixtyFour = Dim6.From([64]);
        double backendMs = Timing.MedianMilliseconds(device, () =>
        {
            for (int i = 0; i < ops; i++) device.Backend.Binary<AddOp>(small.View, one, small.View, one, z.View, sixtyFour, 1);
        });
        Timing.Report(device.Name, $"{ops} executor adds of 64 floats", backendMs, $"{backendMs * 1000 / ops,8:F2} µs/op");
        double tensorMs = Timing.MedianMilliseconds(device, () =>
        {
            using var opScope = new TensorScope();
            var sum = small;
            for (int i = 0; i < ops; i++) sum = sum + small;
        });
        Timing.Report(device.Name, $"{ops} tensor adds of 64 floats (autograd on)", tensorMs, $"{tensorMs * 1000 / ops,8:F2} µs/op");
    }
}
