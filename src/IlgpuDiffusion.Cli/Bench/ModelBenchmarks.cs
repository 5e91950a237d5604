using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>Training and sampling steps of the reference mnist configuration (batch 64; 25 samples), next to
/// the PyTorch times measured for the same model and config (2 CPU threads, or an H200). The reference's
/// step includes LPIPS on VGG16, so that is the default network here; its weights are random (speed does
/// not depend on them, and the bench then needs no weight files).</summary>
internal static class ModelBenchmarks
{
    public static void Run(Device device, string configPath, string lpipsNetwork)
    {
        var config = ExperimentConfig.Load(configPath);
        bool gpu = !device.IsCpu;
        var gen = new Generator(5);
        int batch = config.Train.AutoencoderBatchSize, c = config.Dataset.ImChannels, s = config.Dataset.ImSize;

        using (var vq = new VqVae(device, c, config.Autoencoder))
        using (var discriminator = new Discriminator(device, c))
        using (Lpips lpips = lpipsNetwork switch
        {
            "vgg16" => new VggLpips(device, new Generator(6)),
            "resnet18" => new ResNet18Lpips(device),
            _ => throw new ArgumentException($"--lpips: unknown network '{lpipsNetwork}' (vgg16, resnet18)"),
        })
        using (var optG = new Adam(vq.Parameters(), 1e-4f, 0.5f, 0.999f))
        using (var optD = new Adam(discriminator.Parameters(), 1e-4f, 0.5f, 0.999f))
        {
            var x = Tensor.Randn([batch, c, s, s], gen, device).Clamp(-1f, 1f);
            var m = Timing.Measure(device, () =>
            {
                using var scope = new TensorScope();
                var o = vq.Forward(x);
                var fake = discriminator.Forward(o.Reconstruction);
                var g = Tensor.MseLoss(o.Reconstruction, x) + o.CodebookLoss + o.CommitmentLoss.Mul(0.2f)
                        + lpips.Forward(o.Reconstruction, x).Mean()
                        + Tensor.MseLoss(fake, Tensor.Ones(fake.Shape.ToArray(), device)).Mul(0.5f);
                g.Backward();
                var d = Tensor.MseLoss(discriminator.Forward(o.Reconstruction.Detach()), Tensor.Zeros(fake.Shape.ToArray(), device))
                        + Tensor.MseLoss(discriminator.Forward(x), Tensor.Ones(fake.Shape.ToArray(), device));
                d.Backward();
                optG.Step(); optD.Step(); optG.ZeroGrad(); optD.ZeroGrad();
            }, minSeconds: 3);
            Timing.Report(device.Name, $"autoencoder step b{batch} (+LPIPS {lpipsNetwork}, +disc)",
                m.MedianMilliseconds, PeakAndHost(device, m),
                Against(m.MedianMilliseconds, gpu ? 22.6 : 735, gpu ? "PyTorch on H200" : "PyTorch+OpenBLAS, 2 threads"));
            PrintProfile(device, m);
        }

        int latent = s >> config.Autoencoder.DownSample.Count(d => d), zc = config.Autoencoder.ZChannels;
        var schedule = new LinearNoiseSchedule(config.Diffusion.NumTimesteps, config.Diffusion.BetaStart, config.Diffusion.BetaEnd);
        using var unet = new UNet(device, zc, config.Ldm);
        using (var adam = new Adam(unet.Parameters(), 1e-5f))
        {
            int b = config.Train.LdmBatchSize;
            var z = Tensor.Randn([b, zc, latent, latent], gen, device);
            var m = Timing.Measure(device, () =>
            {
                using var scope = new TensorScope();
                var noise = Tensor.Randn(z.Shape.ToArray(), gen, device);
                int[] t = gen.NextInts(b, schedule.NumTimesteps);
                Tensor.MseLoss(unet.Forward(schedule.AddNoise(z, noise, t), t), noise).Backward();
                adam.Step();
                adam.ZeroGrad();
            }, minSeconds: 3);
            Timing.Report(device.Name, $"LDM step b{b} ({latent}×{latent}×{zc} latents)", m.MedianMilliseconds, PeakAndHost(device, m),
                Against(m.MedianMilliseconds, gpu ? 25 : 1349, gpu ? "PyTorch compiled on H200" : "PyTorch+OpenBLAS, 2 threads"));
            PrintProfile(device, m);
        }
        {
            int n = config.Train.NumSamples;
            var xt = Tensor.Randn([n, zc, latent, latent], gen, device);
            var timesteps = Enumerable.Repeat(500, n).ToArray();
            var m = Timing.Measure(device, () =>
            {
                using var scope = new TensorScope();
                using var noGrad = Autograd.NoGrad();
                unet.Forward(xt, timesteps);
            });
            Timing.Report(device.Name, $"sampling step: UNet forward for {n} samples", m.MedianMilliseconds, PeakAndHost(device, m),
                Against(m.MedianMilliseconds, gpu ? 2.5 : 167, gpu ? "PyTorch with CUDA graphs on H200" : "PyTorch+OpenBLAS, 2 threads"));
            PrintProfile(device, m);
        }
    }

    /// <summary>On a profiled device (<c>--profile</c>), the most expensive primitives of the timed runs of the step
    /// just measured, and how many calls one step makes.</summary>
    private static void PrintProfile(Device device, Measurement m)
    {
        if (device.Backend is not ProfilingBackend profile) return;
        Console.WriteLine(profile.Report(top: 30, runs: m.Runs));
    }

    /// <summary>Peak device memory of the step's tensors (timed runs) and, on an asynchronous device, how long
    /// the host took to queue the step.</summary>
    private static string PeakAndHost(Device device, Measurement m) =>
        $"peak {m.PeakBytes / (1 << 20)} MiB" + (device.IsCpu ? "" : $", host {m.HostMilliseconds:F1} ms");

    private static string Against(double ms, double reference, string what) =>
        $"{what}: {reference} ms → {reference / ms:F2}x {(ms <= reference ? "faster" : "slower")}";
}
