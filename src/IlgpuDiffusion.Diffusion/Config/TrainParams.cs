using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>train_params</c> section: seeds, batch sizes, loss weights, learning rates and outputs.</summary>
public sealed record TrainParams
{
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

    public static IReadOnlyList<string> LpipsChoices { get; } = ["auto", "vgg16", "resnet18"];
    private const string DefaultLpips = "auto";
    private const int DefaultLdmLogSteps = 50;

    public const string Section = "train_params";

    /// <summary>Reads every key of the section; a missing, mistyped or unknown key is a <see cref="ConfigException"/>. Does not validate.</summary>
    public static TrainParams Bind(ConfigSection s)
    {
        var p = new TrainParams
        {
            Seed = s.Int("seed"),
            LdmBatchSize = s.Int("ldm_batch_size"),
            AutoencoderBatchSize = s.Int("autoencoder_batch_size"),
            DiscStart = s.Int("disc_start"),
            DiscWeight = s.Double("disc_weight"),
            CodebookWeight = s.Double("codebook_weight"),
            CommitmentBeta = s.Double("commitment_beta"),
            PerceptualWeight = s.Double("perceptual_weight"),
            KlWeight = s.Double("kl_weight"),
            LdmEpochs = s.Int("ldm_epochs"),
            AutoencoderEpochs = s.Int("autoencoder_epochs"),
            LdmLr = s.Double("ldm_lr"),
            AutoencoderLr = s.Double("autoencoder_lr"),
            AutoencoderAccSteps = s.Int("autoencoder_acc_steps"),
            AutoencoderImgSaveSteps = s.Int("autoencoder_img_save_steps"),
            NumSamples = s.Int("num_samples"),
            NumGridRows = s.Int("num_grid_rows"),
            SaveLatents = s.Bool("save_latents"),
            TaskName = s.String("task_name"),
            CheckpointSteps = s.Int("checkpoint_steps", 0),
            EmaDecay = s.Double("ema_decay", 0),
            Lpips = s.String("lpips", DefaultLpips),
            LdmLogSteps = s.Int("ldm_log_steps", DefaultLdmLogSteps),
        };
        s.RejectUnknownKeys();
        return p;
    }

    /// <summary>Binds a section given as JSON (a parity manifest entry's); errors name <paramref name="source"/>.</summary>
    public static TrainParams FromJson(JsonElement section, string source = "JSON") => Bind(ConfigJson.Section(section, Section, source));

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
        check.NonNegative("checkpoint_steps", CheckpointSteps);
        if (!(EmaDecay >= 0 && EmaDecay < 1)) throw check.Fail("ema_decay", $"must be in [0, 1), got {EmaDecay}");
        if (!LpipsChoices.Contains(Lpips)) throw check.Fail("lpips", $"must be one of {string.Join(", ", LpipsChoices)}, got '{Lpips}'");
        check.Positive("ldm_log_steps", LdmLogSteps);
    }
}
