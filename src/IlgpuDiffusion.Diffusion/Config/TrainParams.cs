namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>train_params</c> section: seeds, batch sizes, loss weights, learning rates and outputs.</summary>
public sealed record TrainParams : IConfigSectionRecord
{
    // One property per key (ConfigBinder reads them by name): every section record has this shape on purpose.
    public required int Seed { get; init; }
    public required int LdmBatchSize { get; init; }
    public required int AutoencoderBatchSize { get; init; }
    public required int DiscStart { get; init; }
    public required double DiscWeight { get; init; }
    public required double CodebookWeight { get; init; }
    public required double CommitmentBeta { get; init; }
    public required double PerceptualWeight { get; init; }
    public required double KlWeight { get; init; }
    public required int LdmEpochs { get; init; }
    public required int AutoencoderEpochs { get; init; }
    public required double LdmLr { get; init; }
    public required double AutoencoderLr { get; init; }
    public required int AutoencoderAccSteps { get; init; }
    public required int AutoencoderImgSaveSteps { get; init; }
    public required int NumSamples { get; init; }
    public required int NumGridRows { get; init; }
    public required bool SaveLatents { get; init; }
    public required string TaskName { get; init; }

    /// <summary>Optional <c>checkpoint_steps</c>: 0 (default) = checkpoints only at the end of each epoch;
    /// N = also every N optimiser steps (long epochs can be resumed mid-way).</summary>
    public int CheckpointSteps { get; init; }

    /// <summary>Optional <c>ema_decay</c> in [0, 1): the decay of an exponential moving average of the LDM
    /// weights, which sampling then uses; 0 (default) = no EMA.</summary>
    public double EmaDecay { get; init; }

    /// <summary>Optional <c>lpips</c>, the perceptual loss network: "auto" (default: VGG16 when its weight
    /// files are present, else ResNet18), "vgg16" or "resnet18".</summary>
    public string Lpips { get; init; } = DefaultLpips;

    /// <summary>Optional <c>ldm_log_steps</c>: the LDM loss is logged and plotted every N optimiser steps (default 50).</summary>
    public int LdmLogSteps { get; init; } = DefaultLdmLogSteps;

    /// <summary>Optional <c>cf_guidance_scale</c> (the reference's key): classifier-free guidance of conditional
    /// sampling, ε̂ = ε̂_uncond + s·(ε̂_cond − ε̂_uncond); 1 (default) = the conditional prediction alone.</summary>
    public double CfGuidanceScale { get; init; } = 1;

    // The original's file-name keys (its mnist.yaml and celebhq*.yaml set them), accepted so that its configs load
    // unchanged. Our files have fixed names, those of the original's defaults (README, "The original's configs").
    public string LdmCkptName { get; init; } = "ddpm_ckpt.pth";
    public string VqvaeAutoencoderCkptName { get; init; } = "vqvae_autoencoder_ckpt.pth";
    public string VaeAutoencoderCkptName { get; init; } = "vae_autoencoder_ckpt.pth";
    public string VqvaeDiscriminatorCkptName { get; init; } = "vqvae_discriminator_ckpt.pth";
    public string VaeDiscriminatorCkptName { get; init; } = "vae_discriminator_ckpt.pth";
    public string VqvaeLatentDirName { get; init; } = "vqvae_latents";
    public string VaeLatentDirName { get; init; } = "vae_latents";

    public static IReadOnlyList<string> LpipsChoices { get; } = ["auto", "vgg16", "resnet18"];
    private const string DefaultLpips = "auto";
    private const int DefaultLdmLogSteps = 50;

    public static string Section => "train_params";

    private static bool IsPlainFolderName(string name) =>
        name is not ("." or "..") && name.Length <= 255 && !name.Any(c => c is '/' or '\\' || char.IsControl(c))
        && !Path.IsPathRooted(name);

    private static string Printable(string text) =>
        string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.NonNegative("seed", Seed);
        check.Positive("ldm_batch_size", LdmBatchSize);
        check.Positive("autoencoder_batch_size", AutoencoderBatchSize);
        check.NonNegative("disc_start", DiscStart);
        check.NonNegative("disc_weight", DiscWeight);
        check.NonNegative("codebook_weight", CodebookWeight);
        check.NonNegative("commitment_beta", CommitmentBeta);
        check.NonNegative("perceptual_weight", PerceptualWeight);
        check.NonNegative("kl_weight", KlWeight);
        check.Positive("ldm_epochs", LdmEpochs);
        check.Positive("autoencoder_epochs", AutoencoderEpochs);
        check.Positive("ldm_lr", LdmLr);
        check.Positive("autoencoder_lr", AutoencoderLr);
        check.Positive("autoencoder_acc_steps", AutoencoderAccSteps);
        check.Positive("autoencoder_img_save_steps", AutoencoderImgSaveSteps);
        check.Positive("num_samples", NumSamples);
        check.Positive("num_grid_rows", NumGridRows);
        check.NotEmpty("task_name", TaskName);
        if (!IsPlainFolderName(TaskName))
            throw check.Fail("task_name", $"must be a plain folder name (created inside --output), got '{Printable(TaskName)}': "
                + "no '/' or '\\', not '.' or '..', no control characters");
        check.NonNegative("checkpoint_steps", CheckpointSteps);
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw check.Fail("ema_decay", $"must be in [0, 1), got {EmaDecay}");
        if (!LpipsChoices.Contains(Lpips)) throw check.Fail("lpips", $"must be one of {string.Join(", ", LpipsChoices)}, got '{Lpips}'");
        check.Positive("ldm_log_steps", LdmLogSteps);
        check.NonNegative("cf_guidance_scale", CfGuidanceScale);
    }
}
