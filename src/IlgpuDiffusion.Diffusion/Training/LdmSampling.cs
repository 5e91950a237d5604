using IlgpuDiffusion.Diffusion.Imaging;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// `sample`: num_samples latents from N(0, I) of size im_size / 2^(number of down-samplings), the
/// reverse diffusion (DDPM over all steps, or DDIM over fewer) with the EMA weights when present, then
/// the frozen autoencoder decodes; images map from [−1, 1] to [0, 1] in a grid of num_grid_rows per row.
/// Optionally the decoded x0 estimate is saved every <c>saveEvery</c> steps, as the original does for each step.
/// A class-conditional UNet samples num_samples of the requested class, or by default num_grid_rows of each class (one
/// grid row per class), with classifier-free guidance of scale <c>guidance</c> (default train_params.cf_guidance_scale).
/// </summary>
public sealed class LdmSampling(TrainingRun run, bool vae)
{
    public string Sample(ISampler sampler, int saveEvery, string? requestedClass = null, double? guidance = null)
    {
        var config = run.Config;
        var p = config.Train;
        using var autoencoder = IAutoencoder.Create(run.Device, config, vae);
        Checkpoint.LoadModel(autoencoder.Module, run.RequireCheckpoint(autoencoder.CheckpointStem, "train-autoencoder"));
        autoencoder.Module.Eval();
        using var unet = new UNet(run.Device, config.Autoencoder.ZChannels, config.Ldm);
        string weights = run.FindCheckpoint(LdmTrainer.EmaStem) ?? run.RequireCheckpoint(LdmTrainer.CheckpointStem, "train-ldm");
        Checkpoint.LoadModel(unet, weights);
        unet.Eval();

        int latentSize = config.Dataset.ImSize >> config.Autoencoder.DownSample.Count(d => d);
        int n = p.NumSamples;
        var conditions = config.Ldm.ConditionConfig;
        double scale = guidance ?? p.CfGuidanceScale;
        int[]? labels = null;
        if (conditions?.ClassCondition is { } classes)
        {
            var names = ConditionBatches.LoadClassList(run.File(ConditionBatches.ClassListFile), classes.NumClasses);
            labels = requestedClass != null
                ? Enumerable.Repeat(ConditionBatches.ResolveClass(requestedClass, names), n).ToArray()
                : Enumerable.Range(0, classes.NumClasses).SelectMany(c => Enumerable.Repeat(c, p.NumGridRows)).ToArray();
            n = labels.Length;
            run.Log.WriteLine($"sample: classes {string.Join(", ", labels.Distinct().Select(c => names[c]))}, guidance {scale}");
        }
        else if (requestedClass != null)
            throw new ArgumentException($"--class {requestedClass}: {config.Source} has no class condition (ldm_params.condition_config)");
        string folder = run.File("samples");
        Directory.CreateDirectory(folder);
        var generator = new Generator((ulong)p.Seed);
        run.Log.WriteLine($"sample: {n} samples, {sampler.Timesteps.Count} {sampler.GetType().Name} steps, weights {weights}");
        var bar = new ProgressBar("sample", sampler.Timesteps.Count, output: run.Log == Console.Out ? null : run.Log);

        using var noGrad = Autograd.NoGrad();
        var guided = conditions != null ? ConditionBatches.ForClasses(conditions, labels ?? [], run.Device) : default;
        var x = Tensor.Randn([n, config.Autoencoder.ZChannels, latentSize, latentSize], generator, run.Device);
        int step = 0;
        foreach (int t in sampler.Timesteps)
        {
            using var scope = new TensorScope();
            var timesteps = Enumerable.Repeat(t, n).ToArray();
            var noisePred = conditions != null
                ? ClassifierFreeGuidance.PredictNoise(unet, x, timesteps, guided.Conditional, guided.Unconditional, scale)
                : unet.Forward(x, timesteps);
            var z = sampler.Sigma(t) > 0 ? Tensor.Randn(x.Shape.ToArray(), generator, run.Device) : null;
            var (next, x0) = sampler.Step(x, noisePred, t, z);
            step++;
            if (saveEvery > 0 && (step % saveEvery == 0 || t == 0)) SaveGrid(autoencoder.Decode(x0), Path.Combine(folder, $"x0_{t}.png"));
            scope.Keep(next);
            x.Dispose();
            x = next;
            bar.Report(step);
        }
        bar.Finish();
        string grid = Path.Combine(folder, "samples.png");
        using (new TensorScope()) SaveGrid(autoencoder.Decode(x), grid);
        x.Dispose();
        run.Log.WriteLine($"sample: grid {grid}");
        return grid;
    }

    private void SaveGrid(Tensor images, string path)
    {
        int c = images.Size(1), s = images.Size(2);
        ImageGrid.Save(path, images.Clamp(-1f, 1f).ToArray(),
            images.Size(0), c, s, s, run.Config.Train.NumGridRows, fromMinusOneToOne: true);
    }
}
