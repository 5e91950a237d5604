using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Diffusion.Imaging;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>How many samples `sample --count` makes, how many go through the UNet at once, and the
/// folder for the individual PNGs (default <see cref="LdmSampling.DefaultImageFolder"/>).</summary>
public sealed record SampleExport(int Count, int BatchSize, string? ImageFolder = null);

/// <summary>
/// `sample`: latents from N(0, I) of size im_size / 2^(number of down-samplings), the reverse diffusion
/// (DDPM over all steps, or DDIM over fewer) with the EMA weights when present, then the frozen autoencoder
/// decodes; images map from [−1, 1] to [0, 1]. The first num_samples form a grid of num_grid_rows per row
/// (samples/samples.png, or a new samples_N.png beside earlier runs' grids);
/// with a <see cref="SampleExport"/>, Count samples are made in batches and each is written as its own PNG.
/// Every Gaussian draw of sample i comes from its own counter range of the seed's Philox stream, so a
/// sample depends on the seed and its index only, not on the batch it was made in.
/// Optionally the decoded x0 estimate of the first batch is saved every <c>saveEvery</c> steps, as the
/// original does for each step. A class-conditional UNet samples the requested class, or by default num_grid_rows of
/// each class (one grid row per class; with Count, sample i is of class (i / num_grid_rows) mod num_classes), with
/// classifier-free guidance of scale <c>guidance</c> (default train_params.cf_guidance_scale). Grids are enlarged
/// <c>gridScale</c> times.
/// </summary>
public sealed class LdmSampling(TrainingRun run, bool vae, int gridScale = 1)
{
    /// <summary>Counters reserved for one sample's draws: far more than its latent values times the steps.</summary>
    private const int SampleStreamBits = 40;

    /// <summary>Where the individual PNGs go when no folder is given: samples/images of the task folder
    /// (`evaluate` reads a task folder's samples from there).</summary>
    public static string DefaultImageFolder(TrainingRun run) => Path.Combine(run.File("samples"), "images");

    public string Sample(ISampler sampler, int saveEvery, SampleExport? export = null, string? requestedClass = null,
        double? guidance = null)
    {
        var config = run.Config;
        var p = config.Train;
        double scale = guidance ?? p.CfGuidanceScale;
        if (!(scale >= 0 && double.IsFinite(scale))) throw new ArgumentException($"--guidance must be a finite number ≥ 0, got {scale}");
        long classGrid = requestedClass == null ? (long)(config.Ldm.ConditionConfig?.ClassCondition?.NumClasses ?? 0) * p.NumGridRows : 0;
        long planned = export?.Count ?? Math.Max(p.NumSamples, classGrid);
        string countOption = export != null ? "--count"
            : classGrid > p.NumSamples ? "the class grid (num_classes × train_params.num_grid_rows)" : "train_params.num_samples";
        SampleBudget.Check(config, planned, countOption, Math.Min(export?.BatchSize ?? planned, planned),
            export != null ? "--batch-size" : countOption);
        run.BeginRecord();
        using var autoencoder = IAutoencoder.Create(run.Device, config, vae);
        Checkpoint.LoadModel(autoencoder.Module,
            CommittedCheckpoints.OfAutoencoder(run, autoencoder).Require(autoencoder.CheckpointStem, "train-autoencoder"));
        autoencoder.Module.Eval();
        using var unet = new UNet(run.Device, config.Autoencoder.ZChannels, config.Ldm);
        var ldm = CommittedCheckpoints.OfLdm(run);
        string weights = ldm.Find(LdmTrainer.EmaStem) ?? ldm.Require(LdmTrainer.CheckpointStem, "train-ldm");
        Checkpoint.LoadModel(unet, weights);
        unet.Eval();

        int latentSize = config.Dataset.ImSize >> config.Autoencoder.DownSample.Count(d => d);
        int[] latentShape = [1, config.Autoencoder.ZChannels, latentSize, latentSize];
        int count = export?.Count ?? p.NumSamples;
        var conditions = config.Ldm.ConditionConfig;
        int[]? labels = null; // the class of each sample
        int gridCount = p.NumSamples;
        IReadOnlyList<string> names = [];
        if (conditions?.ClassCondition is { } classes)
        {
            names = ConditionBatches.LoadClassList(run.File(ConditionBatches.ClassListFile), classes.NumClasses);
            int? only = requestedClass != null ? ConditionBatches.ResolveClass(requestedClass, names) : null;
            if (only == null) gridCount = classes.NumClasses * p.NumGridRows; // one row per class
            if (export == null) count = gridCount;
            labels = Enumerable.Range(0, count).Select(i => only ?? i / p.NumGridRows % classes.NumClasses).ToArray();
            run.Log.WriteLine($"sample: classes {string.Join(", ", labels.Distinct().Select(c => names[c]))}, guidance {scale}");
        }
        else if (requestedClass != null)
            throw new ArgumentException($"--class {requestedClass}: {config.Source} has no class condition (ldm_params.condition_config)");
        int batchSize = Math.Min(export?.BatchSize ?? count, count);
        int batches = (count + batchSize - 1) / batchSize;
        string folder = run.File("samples");
        Directory.CreateDirectory(folder);
        string? imageFolder = export == null ? null : export.ImageFolder ?? DefaultImageFolder(run);
        if (imageFolder != null)
        {
            Directory.CreateDirectory(imageFolder);
            if (labels != null)
                new RequestedClasses(names, Enumerable.Range(0, count).ToDictionary(SampleFileName, i => labels[i])).Save(imageFolder);
        }
        run.Log.WriteLine($"sample: {count} samples in {batches} batch(es) of up to {batchSize}, "
            + $"{sampler.Timesteps.Count} {sampler.GetType().Name} steps, weights {weights}");
        var bar = new ProgressBar("sample", (long)batches * sampler.Timesteps.Count, output: run.Log == Console.Out ? null : run.Log);

        using var noGrad = Autograd.NoGrad();
        gridCount = Math.Min(gridCount, count);
        int step = 0;
        var gridImages = new List<float>();
        int channels = 0, size = 0;
        for (int start = 0; start < count; start += batchSize)
        {
            int n = Math.Min(batchSize, count - start);
            var generators = Enumerable.Range(start, n)
                .Select(i => new Generator((ulong)p.Seed, (ulong)i << SampleStreamBits)).ToArray();
            var guided = conditions != null
                ? ConditionBatches.ForClasses(conditions, labels?[start..(start + n)] ?? [], run.Device)
                : default;
            Tensor x;
            using (var first = new TensorScope()) x = first.Keep(Draw(generators, latentShape));
            foreach (int t in sampler.Timesteps)
            {
                using var scope = new TensorScope();
                var timesteps = Enumerable.Repeat(t, n).ToArray();
                var noisePred = conditions != null
                    ? ClassifierFreeGuidance.PredictNoise(unet, x, timesteps, guided.Conditional, guided.Unconditional, scale)
                    : unet.Forward(x, timesteps);
                var z = sampler.Sigma(t) > 0 ? Draw(generators, latentShape) : null;
                var (next, x0) = sampler.Step(x, noisePred, t, z);
                step++;
                if (start == 0 && saveEvery > 0 && (step % saveEvery == 0 || t == 0))
                    SaveGrid(autoencoder.Decode(x0), Path.Combine(folder, $"x0_{t}.png"));
                scope.Keep(next);
                x.Dispose();
                x = next;
                bar.Report(step);
            }
            using (new TensorScope())
            {
                var images = autoencoder.Decode(x).Clamp(-1f, 1f);
                (channels, size) = (images.Size(1), images.Size(2));
                var values = images.ToArray();
                int per = values.Length / n;
                gridImages.AddRange(values.Take(Math.Max(0, gridCount - start) * per));
                if (imageFolder != null)
                    for (int i = 0; i < n; i++)
                        ImageGrid.Save(Path.Combine(imageFolder, SampleFileName(start + i)), values[(i * per)..((i + 1) * per)],
                            1, channels, size, size, 1, fromMinusOneToOne: true, padding: 0);
            }
            x.Dispose();
        }
        bar.Finish();
        string grid = NewGridPath(folder);
        ImageGrid.Save(grid, gridImages.ToArray(), gridCount, channels, size, size, p.NumGridRows, fromMinusOneToOne: true,
            scale: gridScale);
        run.Log.WriteLine($"sample: grid {grid}" + (imageFolder != null ? $"; {count} images in {imageFolder}" : ""));
        return grid;
    }

    private static string SampleFileName(int index) => $"sample_{index:D6}.png";

    /// <summary>samples.png, or samples_2.png, samples_3.png, … when earlier runs left theirs: a run never replaces
    /// another's grid.</summary>
    internal static string NewGridPath(string folder)
    {
        string path = Path.Combine(folder, "samples.png");
        for (int i = 2; File.Exists(path); i++) path = Path.Combine(folder, $"samples_{i}.png");
        return path;
    }

    /// <summary>One draw of <paramref name="shape"/> (batch 1) from each sample's generator, stacked into a batch.</summary>
    private Tensor Draw(Generator[] generators, int[] shape)
    {
        var draws = generators.Select(g => Tensor.Randn(shape, g, run.Device)).ToArray();
        return draws.Length == 1 ? draws[0] : Tensor.Concat(draws, 0);
    }

    private void SaveGrid(Tensor images, string path)
    {
        int c = images.Size(1), s = images.Size(2);
        ImageGrid.Save(path, images.Clamp(-1f, 1f).ToArray(),
            images.Size(0), c, s, s, run.Config.Train.NumGridRows, fromMinusOneToOne: true, scale: gridScale);
    }
}
