using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Imaging;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// Stage 1, the original implementation's autoencoder training step: reconstruction MSE + codebook/commitment (or KL)
/// + perceptual LPIPS, and after disc_start steps the PatchGAN adversarial terms; Adam(β = 0.5, 0.999)
/// for both networks, losses divided by acc_steps, steps counted over batches across epochs. The
/// generator's adversarial term does not update the discriminator (its parameters are frozen for that pass).
/// </summary>
public sealed class AutoencoderTrainer(TrainingRun run, bool vae, string? lpipsWeights)
{
    public static readonly string[] LossNames =
        ["loss", "recon", "codebook", "commitment", "kl", "perceptual", "adversarial", "discriminator"];

    /// <summary>Config keys a resumed autoencoder run may change: the output keys, the UNet's and its training's.</summary>
    public static IReadOnlyList<string> FreeOnResume { get; } =
    [
        .. RunRecord.OutputKeys, "diffusion_params", "ldm_params", "train_params.ldm_batch_size", "train_params.ldm_lr",
        "train_params.ema_decay",
    ];

    public void Train(bool resume, bool overwrite)
    {
        var config = run.Config;
        var p = config.Train;
        run.EnsureTaskFolder();
        var dataset = run.OpenDataset();
        using var loader = new DataLoader(dataset, p.AutoencoderBatchSize, (ulong)p.Seed) { Share = run.Parallel.Share };
        using var model = IAutoencoder.Create(run.Device, config, vae);
        using var discriminator = new Discriminator(run.Device, config.Dataset.ImChannels);
        using var lpips = p.PerceptualWeight > 0 ? CreateLpips(p.Lpips) : null;
        using var optG = new Adam(model.Module.Parameters(), (float)p.AutoencoderLr, 0.5f, 0.999f);
        using var optD = new Adam(discriminator.Parameters(), (float)p.AutoencoderLr, 0.5f, 0.999f);
        var generator = new Generator((ulong)p.Seed);
        var files = new StageFiles(run, run.File(model.StateFile),
            new Dictionary<string, (Module, Adam)> { ["generator"] = (model.Module, optG), ["discriminator"] = (discriminator, optD) });
        var checkpoints = new (Module, string)[] { (model.Module, model.CheckpointStem), (discriminator, model.DiscriminatorStem) };
        files.GuardFreshStart(resume, overwrite, [model.CheckpointStem], "train-autoencoder");
        run.BeginRecord(resume, FreeOnResume);

        long step = 0;
        if (resume) step = files.Resume(checkpoints, generator, loader).Step;
        run.Parallel.Start(model.Module, discriminator);
        long total = (long)p.AutoencoderEpochs * loader.BatchesPerEpoch;
        string resumeNote = step > 0 ? $", resuming after step {step}" : "";
        run.Log.WriteLine($"train-autoencoder: {model.Kind} on {run.Device.Name}, {dataset.Name}: {dataset.Count} images, "
            + $"{loader.BatchesPerEpoch} batches of {p.AutoencoderBatchSize} per epoch, {total} steps{resumeNote}; "
            + $"perceptual: {lpips?.GetType().Name ?? "off"}");
        using var metrics = run.Parallel.IsMain ? new MetricsLog(run.File("autoencoder_metrics.csv"), LossNames, resume ? step : -1) : null;
        var progress = new ProgressBar("autoencoder", total, step, run.Log == Console.Out ? null : run.Log);
        string samples = run.File($"{model.Kind}_autoencoder_samples");
        Directory.CreateDirectory(samples);

        while (step < total)
        {
            if (!loader.TryNext(out var batch)) continue; // epoch boundary
            step++;
            int epoch = (int)((step - 1) / loader.BatchesPerEpoch);
            var losses = TrainingRun.GuardMemory(() => Step(batch, step, model, discriminator, lpips, optG, optD, generator, samples),
                "train_params.autoencoder_batch_size", p.AutoencoderBatchSize);
            losses = run.Parallel.Losses(losses, batch.Shard);
            TrainingRun.CheckFinite(step, losses);
            run.Parallel.AfterStep(step, model.Module, discriminator);
            metrics?.Append(step, epoch, losses);
            progress.Report(step, losses);
            // a stop waits for the optimiser step that ends the accumulation, so that the saved state resumes exactly;
            // on the last step the run simply ends
            bool epochEnd = step % loader.BatchesPerEpoch == 0;
            bool stopping = run.Stop.IsRequested && step % p.AutoencoderAccSteps == 0 && step < total;
            if (epochEnd || step == total || (p.CheckpointSteps > 0 && step % p.CheckpointSteps == 0) || stopping)
                files.Save(checkpoints, step, epoch, generator, loader);
            if (stopping) throw run.Interrupted(step);
        }
        var elapsed = progress.Finish();
        if (metrics != null)
            LossPlot.Save(run.File("autoencoder_losses.png"), metrics.Series.Where(s => s.Value.Count > 0)
                .ToDictionary(s => s.Key, s => (IReadOnlyList<(long, double)>)s.Value), "autoencoder losses", logScale: true);
        run.Log.WriteLine(
            $"train-autoencoder: done in {elapsed:hh\\:mm\\:ss}; checkpoint {run.File(model.CheckpointStem + ".safetensors")}");
    }

    private Lpips CreateLpips(string kind) => kind switch
    {
        "vgg16" => VggLpips.Load(run.Device, lpipsWeights ?? Lpips.DefaultWeightsFolder),
        "resnet18" => new ResNet18Lpips(run.Device),
        _ => Lpips.Create(run.Device, lpipsWeights),
    };

    private Dictionary<string, double> Step(HostBatch batch, long step, IAutoencoder model, Discriminator discriminator, Lpips? lpips,
        Adam optG, Adam optD, Generator generator, string samples)
    {
        var p = run.Config.Train;
        float acc = p.AutoencoderAccSteps;
        bool adversarial = step > p.DiscStart;
        using var scope = new TensorScope();
        using var draws = DataParallel.Draws(generator, batch.Shard);
        var x = batch.ToTensor(run.Device);
        var (reconstruction, terms) = model.TrainingForward(x, p, generator);
        if (run.Parallel.IsMain && (step == 1 || step % p.AutoencoderImgSaveSteps == 0)) SaveSamples(x, reconstruction, samples, step);

        var losses = new Dictionary<string, Tensor>();
        var recon = Tensor.MseLoss(reconstruction, x);
        var gLoss = recon;
        foreach (var term in terms.Values) gLoss = gLoss + term;
        if (lpips != null)
        {
            var perceptual = lpips.Forward(reconstruction, x).Mean().Mul((float)p.PerceptualWeight);
            gLoss = gLoss + perceptual;
            losses["perceptual"] = perceptual;
        }
        if (adversarial)
        {
            SetRequiresGrad(discriminator, false);
            var fake = discriminator.Forward(reconstruction);
            var adv = Tensor.MseLoss(fake, Tensor.Ones(fake.Shape.ToArray(), run.Device)).Mul((float)p.DiscWeight);
            SetRequiresGrad(discriminator, true);
            gLoss = gLoss + adv;
            losses["adversarial"] = adv;
        }
        bool stepping = step % p.AutoencoderAccSteps == 0; // the accumulation's last pass: its gradients are summed over the ranks
        run.Parallel.Backward(gLoss.Mul(batch.Shard.Weight / acc), stepping ? optG : null);

        if (adversarial)
        {
            var fake = discriminator.Forward(reconstruction.Detach());
            var real = discriminator.Forward(x);
            var dLoss = (Tensor.MseLoss(fake, Tensor.Zeros(fake.Shape.ToArray(), run.Device))
                         + Tensor.MseLoss(real, Tensor.Ones(real.Shape.ToArray(), run.Device))).Mul((float)p.DiscWeight / 2f);
            run.Parallel.Backward(dLoss.Mul(batch.Shard.Weight / acc), stepping ? optD : null);
            losses["discriminator"] = dLoss;
            if (stepping) { optD.Step(); optD.ZeroGrad(); }
        }
        if (stepping) { optG.Step(); optG.ZeroGrad(); }

        losses["loss"] = gLoss;
        losses["recon"] = recon;
        foreach (var (name, term) in terms) losses[name] = term;
        return ScalarReadback.Read(losses);
    }

    private static void SetRequiresGrad(Module module, bool on)
    {
        foreach (var parameter in module.Parameters()) parameter.RequiresGrad = on;
    }

    /// <summary>The first (up to 8) inputs above their reconstructions, as the reference saves them.</summary>
    private void SaveSamples(Tensor x, Tensor reconstruction, string folder, long step)
    {
        int n = Math.Min(8, x.Size(0)), c = x.Size(1), s = x.Size(2);
        var inputs = x.Slice(0, 0, n).ToArray();
        var outputs = reconstruction.Detach().Slice(0, 0, n).ToArray();
        ImageGrid.Save(Path.Combine(folder, $"current_autoencoder_sample_{step}.png"), [.. inputs, .. outputs],
            2 * n, c, s, s, n, fromMinusOneToOne: true);
    }
}
