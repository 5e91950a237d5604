using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>Conv2d forward and forward+backward at the shapes of the reference mnist autoencoder (batch 64, 28×28 → 7×7).</summary>
internal static class ConvBenchmarks
{
    private static readonly (int Cin, int Cout, int Size, int Kernel, int Stride, int Padding)[] MnistAutoencoderConvs =
    [
        (1, 32, 28, 3, 1, 1),     // encoder conv_in
        (32, 64, 28, 3, 1, 1),    // first resnet of down block 0
        (64, 64, 28, 3, 1, 1),
        (64, 64, 28, 4, 2, 1),    // down-sample 28 → 14
        (64, 128, 14, 3, 1, 1),
        (128, 128, 14, 3, 1, 1),
        (128, 128, 14, 4, 2, 1),  // down-sample 14 → 7
        (128, 128, 7, 3, 1, 1),   // mid blocks
    ];

    public static void Run(Device device, int batch = 64)
    {
        var gen = new Generator(2);
        foreach (var (cin, cout, size, k, stride, pad) in MnistAutoencoderConvs)
        {
            using var scope = new TensorScope();
            var x = Tensor.Randn([batch, cin, size, size], gen, device);
            var w = Tensor.Randn([cout, cin, k, k], gen, device);
            var bias = Tensor.Randn([cout], gen, device);
            x.RequiresGrad = true; w.RequiresGrad = true; bias.RequiresGrad = true;
            int outSize = (size + 2 * pad - k) / stride + 1;
            double flops = 2.0 * batch * cout * outSize * outSize * cin * k * k;
            string shape = $"conv2d b{batch} {cin}→{cout} {size}² k{k}s{stride}";
            double fwd = Timing.MedianMilliseconds(device, () =>
            {
                using var s = new TensorScope();
                using var noGrad = Autograd.NoGrad();
                Tensor.Conv2d(x, w, bias, stride, pad);
            });
            Timing.Report(device.Name, shape + " fwd", fwd, $"{flops / (fwd * 1e6),8:F1} GFLOP/s");
            double both = Timing.MedianMilliseconds(device, () =>
            {
                using var s = new TensorScope();
                Tensor.Conv2d(x, w, bias, stride, pad).Sum().Backward();
                x.Grad = null; w.Grad = null; bias.Grad = null;
            });
            Timing.Report(device.Name, shape + " fwd+bwd", both, $"{3 * flops / (both * 1e6),8:F1} GFLOP/s");
        }
    }
}
