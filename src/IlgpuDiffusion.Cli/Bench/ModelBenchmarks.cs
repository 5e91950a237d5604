using System.Runtime;
using System.Text.Encodings.Web;
using System.Text.Json;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>The steps the models suite times, in order.</summary>
internal enum ModelStep { Autoencoder, Ldm, Sampling }

/// <summary>PyTorch's time for one step, printed next to ours: on the 2-core CPU machine (OpenBLAS, 2 threads) and on
/// the GPU, with what was measured there.</summary>
internal sealed record ReferenceTime(double GpuMilliseconds, string GpuWhat);

/// <summary>How each step is timed: untimed warm-up runs, then at least <see cref="Runs"/> timed runs, repeated
/// for at least <see cref="MinSeconds"/>.</summary>
internal sealed record StepTiming(int Warmup, int Runs, double MinSeconds);

/// <summary>A configuration of the models suite: its config file, the batch of each step where it differs from the
/// config's own, how its steps are timed, and PyTorch's times for them where known. scripts/torch_reference_bench.py
/// holds the same configurations.</summary>
internal sealed record ModelBenchConfiguration(string Name, string ConfigPath, StepTiming Timing,
    int? AutoencoderBatch = null, int? LdmBatch = null, int? Samples = null,
    IReadOnlyDictionary<ModelStep, ReferenceTime>? Reference = null)
{
    /// <summary>The reference mnist configuration at its own batches (64, 64, 25 samples).</summary>
    public static ModelBenchConfiguration Mnist { get; } = new("mnist", Path.Combine("configs", "mnist.json"), new StepTiming(2, 3, 3),
        Reference: new Dictionary<ModelStep, ReferenceTime>
        {
            [ModelStep.Autoencoder] = new(22.6, "PyTorch on H200"),
            [ModelStep.Ldm] = new(25, "PyTorch compiled on H200"),
            [ModelStep.Sampling] = new(2.5, "PyTorch with CUDA graphs on H200"),
        });

    /// <summary>The reference celebhq configuration (256×256 images, 32×32×4 latents) at batches a CPU times in seconds.</summary>
    public static ModelBenchConfiguration CelebHq { get; } = new("celebhq", Path.Combine("configs", "celebhq.json"),
        new StepTiming(1, 3, 0), AutoencoderBatch: 1, LdmBatch: 2, Samples: 1);

    public static IReadOnlyList<ModelBenchConfiguration> All { get; } = [Mnist, CelebHq];

    /// <summary>What <c>--config</c> names: mnist, celebhq, all, or a config file (timed as mnist is, at its own batches).</summary>
    public static IReadOnlyList<ModelBenchConfiguration> Select(string choice) =>
        choice == "all" ? All
        : All.FirstOrDefault(c => c.Name == choice) is { } known ? [known]
        : File.Exists(choice) ? [Mnist with { Name = Path.GetFileNameWithoutExtension(choice), ConfigPath = choice, Reference = null }]
        : throw new ArgumentException($"--config: '{choice}' is neither {string.Join(" | ", All.Select(c => c.Name))} | all nor a file");
}

/// <summary>One timed step, as <c>--json</c> writes it (the fields scripts/compare-cpu.sh reads): the timed runs' wall
/// times, the allocator's peak (tensor bytes in use) and the process's peak resident memory above what it held before
/// the step built its modules.</summary>
internal sealed record StepResult(string Config, string Step, string What, int Batch, double MedianMs, IReadOnlyList<double> TimesMs,
    int Warmup, long AllocatorPeakBytes, long? ProcessPeakBytes);

/// <summary>Training and sampling steps of the reference configurations (mnist at its own batches, celebhq at a CPU-sized
/// batch), timed as scripts/torch_reference_bench.py times PyTorch on the same models. The reference's autoencoder step
/// includes LPIPS on VGG16, so that is the default network here; its weights are random (speed does not depend on them,
/// and the bench then needs no weight files). Each step builds its own modules after handing back what the previous
/// one left, so its peak memory is its own.</summary>
internal static class ModelBenchmarks
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Runs every step of each configuration, timed as <paramref name="timing"/> makes of the configuration's own
    /// timing (the command line's overrides); <paramref name="jsonPath"/>, when given, receives the results.</summary>
    public static void Run(Device device, IReadOnlyList<ModelBenchConfiguration> configurations, string lpipsNetwork,
        Func<StepTiming, StepTiming> timing, string? jsonPath)
    {
        var results = new List<StepResult>();
        foreach (var bench in configurations)
        {
            Console.WriteLine($"{bench.Name} configuration ({bench.ConfigPath})");
            var config = ExperimentConfig.Load(bench.ConfigPath);
            var run = new StepRun(device, bench, timing(bench.Timing), new Generator(5));
            results.Add(AutoencoderStep(run, config, lpipsNetwork));
            results.Add(LdmStep(run, config));
            results.Add(SamplingStep(run, config));
        }
        if (jsonPath != null)
        {
            var report = new { System = "ildm", Device = device.Name, device.Info.Description, Steps = results };
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(report, Json));
        }
    }

    /// <summary>What each step of one configuration shares: the device, the configuration, its timing and its random inputs.</summary>
    private sealed record StepRun(Device Device, ModelBenchConfiguration Bench, StepTiming Timing, Generator Gen);

    private static StepResult AutoencoderStep(StepRun run, ExperimentConfig config, string lpipsNetwork)
    {
        var (device, gen) = (run.Device, run.Gen);
        var train = config.Train;
        int batch = run.Bench.AutoencoderBatch ?? train.AutoencoderBatchSize, c = config.Dataset.ImChannels, s = config.Dataset.ImSize;
        long? before = ReleaseFreeMemory(device);
        float lr = (float)train.AutoencoderLr, beta = (float)train.CommitmentBeta, discWeight = (float)train.DiscWeight;
        using var vq = new VqVae(device, c, config.Autoencoder);
        using var discriminator = new Discriminator(device, c);
        using Lpips lpips = lpipsNetwork switch
        {
            "vgg16" => new VggLpips(device, new Generator(6)),
            "resnet18" => new ResNet18Lpips(device),
            _ => throw new ArgumentException($"--lpips: unknown network '{lpipsNetwork}' (vgg16, resnet18)"),
        };
        using var optG = new Adam(vq.Parameters(), lr, 0.5f, 0.999f);
        using var optD = new Adam(discriminator.Parameters(), lr, 0.5f, 0.999f);
        using var inputs = new TensorScope();
        var x = Tensor.Randn([batch, c, s, s], gen, device).Clamp(-1f, 1f);
        return Measure(run, ModelStep.Autoencoder, $"autoencoder step b{batch} (+LPIPS {lpipsNetwork}, +disc)", batch, before, () =>
        {
            using var scope = new TensorScope();
            var o = vq.Forward(x);
            var fake = discriminator.Forward(o.Reconstruction);
            var g = Tensor.MseLoss(o.Reconstruction, x) + o.CodebookLoss + o.CommitmentLoss.Mul(beta)
                    + lpips.Forward(o.Reconstruction, x).Mean()
                    + Tensor.MseLoss(fake, Tensor.Ones(fake.Shape.ToArray(), device)).Mul(discWeight);
            g.Backward();
            var d = Tensor.MseLoss(discriminator.Forward(o.Reconstruction.Detach()), Tensor.Zeros(fake.Shape.ToArray(), device))
                    + Tensor.MseLoss(discriminator.Forward(x), Tensor.Ones(fake.Shape.ToArray(), device));
            d.Backward();
            optG.Step(); optD.Step(); optG.ZeroGrad(); optD.ZeroGrad();
        });
    }

    private static StepResult LdmStep(StepRun run, ExperimentConfig config)
    {
        var (device, gen) = (run.Device, run.Gen);
        int b = run.Bench.LdmBatch ?? config.Train.LdmBatchSize;
        var (zc, latent) = LatentShape(config);
        var schedule = new LinearNoiseSchedule(config.Diffusion.NumTimesteps, config.Diffusion.BetaStart, config.Diffusion.BetaEnd);
        long? before = ReleaseFreeMemory(device);
        using var unet = new UNet(device, zc, config.Ldm);
        using var adam = new Adam(unet.Parameters(), (float)config.Train.LdmLr);
        using var inputs = new TensorScope();
        var z = Tensor.Randn([b, zc, latent, latent], gen, device);
        return Measure(run, ModelStep.Ldm, $"LDM step b{b} ({latent}×{latent}×{zc} latents)", b, before, () =>
        {
            using var scope = new TensorScope();
            var noise = Tensor.Randn(z.Shape.ToArray(), gen, device);
            int[] t = gen.NextInts(b, schedule.NumTimesteps);
            Tensor.MseLoss(unet.Forward(schedule.AddNoise(z, noise, t), t), noise).Backward();
            adam.Step();
            adam.ZeroGrad();
        });
    }

    private static StepResult SamplingStep(StepRun run, ExperimentConfig config)
    {
        var (device, gen) = (run.Device, run.Gen);
        int n = run.Bench.Samples ?? config.Train.NumSamples;
        var (zc, latent) = LatentShape(config);
        long? before = ReleaseFreeMemory(device);
        using var unet = new UNet(device, zc, config.Ldm);
        using var inputs = new TensorScope();
        var xt = Tensor.Randn([n, zc, latent, latent], gen, device);
        var timesteps = Enumerable.Repeat(500, n).ToArray();
        return Measure(run, ModelStep.Sampling, $"sampling step: UNet forward for {n} samples", n, before, () =>
        {
            using var scope = new TensorScope();
            using var noGrad = Autograd.NoGrad();
            unet.Forward(xt, timesteps);
        });
    }

    private static (int Channels, int Size) LatentShape(ExperimentConfig config) =>
        (config.Autoencoder.ZChannels, config.Dataset.ImSize >> config.Autoencoder.DownSample.Count(d => d));

    /// <summary>Times one step, prints it (with PyTorch's time where known, and on a profiled device its profile) and
    /// returns its result; <paramref name="before"/> is the resident size before the step built its modules.</summary>
    private static StepResult Measure(StepRun run, ModelStep step, string what, int batch, long? before, Action action)
    {
        var (device, timing) = (run.Device, run.Timing);
        var m = Timing.Measure(device, action, timing.Warmup, timing.MinSeconds, minRuns: timing.Runs);
        long? processPeak = m.PeakResidentBytes - before;
        var memory = $"peak {m.PeakBytes >> 20} MiB" + (processPeak is { } p ? $", process +{p >> 20} MiB" : "")
                     + (device.IsCpu ? "" : $", host {m.HostMilliseconds:F1} ms");
        Timing.Report(device.Name, what, m.MedianMilliseconds, memory, Against(device, m.MedianMilliseconds, run.Bench.Reference?[step]));
        if (device.Backend is ProfilingBackend profile) Console.WriteLine(profile.Report(top: 30, runs: m.Runs));
        return new StepResult(run.Bench.Name, step.ToString().ToLowerInvariant(), what, batch, m.MedianMilliseconds, m.Milliseconds,
            timing.Warmup, m.PeakBytes, processPeak);
    }

    /// <summary>Hands back what earlier steps left (the allocator's cached buffers, then the managed heap's free memory in a
    /// full compacting collection) and returns the resident size then, as scripts/torch_reference_bench.py does for PyTorch.</summary>
    private static long? ReleaseFreeMemory(Device device)
    {
        device.Allocator.EmptyCache();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return ProcessMemory.ResidentBytes;
    }

    /// <summary>The GPU figure to beat; none on the cpu, where a fixed figure from another moment misleads on a shared
    /// machine: scripts/compare-cpu.sh measures PyTorch in the same run.</summary>
    private static string? Against(Device device, double ms, ReferenceTime? reference)
    {
        if (reference == null || device.IsCpu) return null;
        var (what, referenceMs) = (reference.GpuWhat, reference.GpuMilliseconds);
        return $"{what}: {referenceMs} ms → {referenceMs / ms:F2}x {(ms <= referenceMs ? "faster" : "slower")}";
    }
}
