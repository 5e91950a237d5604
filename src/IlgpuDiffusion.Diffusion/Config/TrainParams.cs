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

    public const string Section = "train_params";

    public static TrainParams FromJson(JsonElement section) => ConfigJson.Read<TrainParams>(section, Section);

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
    }
}
