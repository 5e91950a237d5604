using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Imaging;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// Stage 2, the original implementation's LDM training step: t ~ U[0, T), ε ~ N(0, I), x_t = sqrt(ᾱ_t)·z + sqrt(1−ᾱ_t)·ε,
/// loss = MSE(UNet(x_t, t), ε), Adam(ldm_lr). Latents come from the cache written by
/// `infer-autoencoder` when it is complete and made by the current autoencoder, otherwise the frozen
/// autoencoder encodes each batch. With ema_decay > 0 an exponential moving average of the weights (with warm-up) is
/// kept and saved for sampling. A conditional UNet (ldm_params.condition_config) gets each batch's conditions, each
/// dropped per sample with its cond_drop_prob (<see cref="ConditionBatches"/>); the class names are saved with the run.
/// </summary>
public sealed class LdmTrainer(TrainingRun run, bool vae)
{
    public const string CheckpointStem = "ddpm_ckpt", EmaStem = "ddpm_ema_ckpt", StateFile = "ddpm_state.safetensors";

    /// <summary>Config keys a resumed LDM run may change: the output keys and the autoencoder's training (not its shape).</summary>
    public static IReadOnlyList<string> FreeOnResume { get; } =
    [
        .. RunRecord.OutputKeys, "train_params.autoencoder_batch_size", "train_params.disc_start", "train_params.disc_weight",
        "train_params.codebook_weight", "train_params.commitment_beta", "train_params.perceptual_weight", "train_params.kl_weight",
        "train_params.autoencoder_lr", "train_params.autoencoder_acc_steps", "train_params.lpips",
    ];

    public void Train(bool resume, bool overwrite)
    {
        var config = run.Config;
        var p = config.Train;
        run.EnsureTaskFolder();
        using var autoencoder = IAutoencoder.Create(run.Device, config, vae);
        string autoencoderCheckpoint =
            CommittedCheckpoints.OfAutoencoder(run, autoencoder).Require(autoencoder.CheckpointStem, "train-autoencoder");
        Checkpoint.LoadModel(autoencoder.Module, autoencoderCheckpoint);
        autoencoder.Module.Eval();

        var images = run.OpenDataset();
        var data = run.OpenConditions(images);
        var cache = new LatentCache(run.File($"{autoencoder.Kind}_latents.safetensors"));
        IImageDataset source = images;
        bool cached = cache.IsComplete(images.Count, LatentCache.Fingerprint(autoencoderCheckpoint, images), out var reason);
        if (cached) source = cache.Load();
        run.Log.WriteLine(cached ? $"train-ldm: latents from {cache.Path}" : $"train-ldm: encoding on the fly ({reason})");
        if (data?.Labels != null && source is LatentDataset { Labels: { } cachedLabels }) data = data.WithLabels(cachedLabels);
        var conditions = data != null ? new ConditionBatches(config.Ldm.ConditionConfig!, data, run.Device) : null;
        if (data?.ClassNames is { } classNames && run.Parallel.IsMain)
            ConditionBatches.SaveClassList(run.File(ConditionBatches.ClassListFile), classNames);

        using var loader = new DataLoader(source, p.LdmBatchSize, (ulong)p.Seed) { Share = run.Parallel.Share };
        using var unet = new UNet(run.Device, config.Autoencoder.ZChannels, config.Ldm);
        using var ema = p.EmaDecay > 0 ? new UNet(run.Device, config.Autoencoder.ZChannels, config.Ldm) : null;
        using var adam = new Adam(unet.Parameters(), (float)p.LdmLr);
        var schedule = new LinearNoiseSchedule(config.Diffusion.NumTimesteps, config.Diffusion.BetaStart, config.Diffusion.BetaEnd);
        var generator = new Generator((ulong)p.Seed);
        var formerFiles = new List<string>(); // an earlier run's, that this one does not write: retired by its saves
        if (ema == null) formerFiles.Add(EmaStem + ".safetensors");
        if (data?.ClassNames == null) formerFiles.Add(ConditionBatches.ClassListFile);
        var files = new StageFiles(run, run.File(StateFile),
            new Dictionary<string, (Module, Adam)> { ["unet"] = (unet, adam) }, formerFiles);
        var checkpoints = new List<(Module, string)> { (unet, CheckpointStem) };
        if (ema != null) checkpoints.Add((ema, EmaStem));
        files.GuardFreshStart(resume, overwrite, [CheckpointStem], "train-ldm");
        run.BeginRecord(resume, FreeOnResume);

        long step = 0;
        if (resume) step = files.Resume(checkpoints, generator, loader).Step;
        else if (ema != null) CopyWeights(unet, ema);
        run.Parallel.Start([.. checkpoints.Select(c => c.Item1)]);
        long total = (long)p.LdmEpochs * loader.BatchesPerEpoch;
        long parameterCount = unet.Parameters().Sum(t => (long)t.Count);
        string resumeNote = step > 0 ? $", resuming after step {step}" : "";
        run.Log.WriteLine($"train-ldm: UNet ({parameterCount:N0} parameters) on {run.Device.Name}, {source.Count} latents, "
            + $"{loader.BatchesPerEpoch} batches of {p.LdmBatchSize} per epoch, {total} steps{resumeNote}");
        using var metrics = run.Parallel.IsMain ? new MetricsLog(run.File("ldm_metrics.csv"), ["loss"], resume ? step : -1) : null;
        var progress = new ProgressBar("ldm", total, step, run.Log == Console.Out ? null : run.Log);
        double logged = 0;
        int loggedCount = 0;

        while (step < total)
        {
            if (!loader.TryNext(out var batch)) continue;
            step++;
            int epoch = (int)((step - 1) / loader.BatchesPerEpoch);
            var update = (float)EmaDecayAt(p.EmaDecay, step - 1);
            double shareLoss = TrainingRun.GuardMemory(
                () => Step(batch, cached, autoencoder, unet, ema, update, adam, schedule, generator, conditions),
                "train_params.ldm_batch_size", p.LdmBatchSize);
            double loss = run.Parallel.Losses(new Dictionary<string, double> { ["loss"] = shareLoss }, batch.Shard)["loss"];
            TrainingRun.CheckFinite(step, new Dictionary<string, double> { ["loss"] = loss });
            run.Parallel.AfterStep(step, [.. checkpoints.Select(c => c.Item1)]);
            logged += loss;
            loggedCount++;
            if (step % p.LdmLogSteps == 0 || step == total)
            {
                var values = new Dictionary<string, double> { ["loss"] = logged / loggedCount };
                metrics?.Append(step, epoch, values);
                progress.Report(step, values);
                logged = 0;
                loggedCount = 0;
            }
            bool epochEnd = step % loader.BatchesPerEpoch == 0, stopping = run.Stop.IsRequested && step < total;
            if (epochEnd || step == total || (p.CheckpointSteps > 0 && step % p.CheckpointSteps == 0) || stopping)
                files.Save(checkpoints, step, epoch, generator, loader);
            if (stopping) throw run.Interrupted(step);
        }
        var elapsed = progress.Finish();
        if (metrics != null)
            LossPlot.Save(run.File("ldm_losses.png"),
                new Dictionary<string, IReadOnlyList<(long, double)>> { ["loss"] = metrics.Series["loss"] },
                "LDM loss (MSE of the predicted noise)", logScale: true);
        run.Log.WriteLine($"train-ldm: done in {elapsed:hh\\:mm\\:ss}; checkpoint {run.File(CheckpointStem + ".safetensors")}");
    }

    private double Step(HostBatch batch, bool cached, IAutoencoder autoencoder, UNet unet, UNet? ema, float emaDecay, Adam adam,
        LinearNoiseSchedule schedule, Generator generator, ConditionBatches? conditions)
    {
        using var scope = new TensorScope();
        using var draws = DataParallel.Draws(generator, batch.Shard);
        var x = batch.ToTensor(run.Device);
        Tensor z;
        using (Autograd.NoGrad()) z = cached ? x : autoencoder.EncodeLatent(x);
        var noise = Tensor.Randn(z.Shape.ToArray(), generator, run.Device);
        int[] t = generator.NextInts(z.Size(0), schedule.NumTimesteps);
        var loss = Tensor.MseLoss(unet.Forward(schedule.AddNoise(z, noise, t), t, conditions?.ForItems(batch.Indices, generator)), noise);
        run.Parallel.Backward(DataParallel.Weigh(loss, batch.Shard), adam);
        adam.Step();
        adam.ZeroGrad();
        if (ema != null) UpdateEma(unet, ema, emaDecay);
        return loss.Item();
    }

    /// <summary>The EMA decay of update <paramref name="n"/> (from 0): min(ema_decay, (1 + n) / (10 + n)), the warm-up of
    /// diffusers' EMAModel, so that the average soon forgets the random initial weights instead of trailing them for
    /// about 1 / (1 − ema_decay) steps.</summary>
    public static double EmaDecayAt(double decay, long n) => Math.Min(decay, (1.0 + n) / (10.0 + n));

    /// <summary>ema ← decay·ema + (1 − decay)·θ, parameter by parameter, in place.</summary>
    private static void UpdateEma(Module model, Module ema, float decay)
    {
        using var noGrad = Autograd.NoGrad();
        foreach (var ((_, p), (_, e)) in model.NamedParameters().Zip(ema.NamedParameters()))
            e.CopyFrom(e.Affine(decay, 0f) + p.Mul(1f - decay));
    }

    private static void CopyWeights(Module from, Module to)
    {
        foreach (var ((_, p), (_, e)) in from.NamedParameters().Zip(to.NamedParameters())) e.CopyFrom(p);
    }
}
