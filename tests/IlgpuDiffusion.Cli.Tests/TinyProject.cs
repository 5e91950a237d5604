using System.Text.Json.Nodes;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>A scratch folder with a tiny synthetic IDX data set (16×16 grey squares at varying places) and a
/// config small enough that every stage runs in seconds on the cpu executor. With <c>numClasses</c> the images get
/// labels (i mod numClasses, in an IDX labels file) and the UNet a class condition.</summary>
public sealed class TinyProject : IDisposable
{
    public TinyProject(int images = 48, int numClasses = 0)
    {
        Folder = Directory.CreateTempSubdirectory("ildm-e2e-").FullName;
        string data = Path.Combine(Folder, "data");
        Directory.CreateDirectory(data);
        WriteIdx(Path.Combine(data, "train-images-idx3-ubyte"), images, 16);
        WriteIdx(Path.Combine(data, "t10k-images-idx3-ubyte"), 16, 16);
        ConfigPath = Path.Combine(Folder, "tiny.json");
        var config = Config(data);
        if (numClasses > 0)
        {
            LabelsPath = Path.Combine(data, "train-labels-idx1-ubyte");
            WriteLabels(LabelsPath, images, numClasses);
            WriteLabels(Path.Combine(data, "t10k-labels-idx1-ubyte"), 16, numClasses);
            config["ldm_params"]!["condition_config"] = new JsonObject
            {
                ["condition_types"] = new JsonArray("class"),
                ["class_condition_config"] = new JsonObject { ["num_classes"] = numClasses, ["cond_drop_prob"] = 0.3 },
            };
        }
        File.WriteAllText(ConfigPath, config.ToJsonString());
    }

    public string? LabelsPath { get; }

    public string Folder { get; }
    public string ConfigPath { get; }
    public string Task => Path.Combine(Folder, "tiny");

    public Ildm.Result Run(params string[] args) =>
        Ildm.RunIn(Folder, [.. args, "--config", ConfigPath, "--device", "cpu", "--output", Folder]);

    private static void WriteIdx(string path, int count, int size)
    {
        using var file = File.Create(path);
        using var writer = new BinaryWriter(file);
        foreach (int v in new[] { 0x00000803, count, size, size })
            writer.Write(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v));
        for (int i = 0; i < count; i++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    int cx = 3 + i % 7, cy = 3 + i / 7 % 7; // a bright 6×6 square whose place depends on i
                    writer.Write((byte)(x >= cx && x < cx + 6 && y >= cy && y < cy + 6 ? 230 : 20));
                }
    }

    private static void WriteLabels(string path, int count, int numClasses)
    {
        using var file = File.Create(path);
        using var writer = new BinaryWriter(file);
        foreach (int v in new[] { 0x00000801, count }) writer.Write(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v));
        for (int i = 0; i < count; i++) writer.Write((byte)(i % numClasses));
    }

    private static JsonObject Config(string data) => new()
    {
        ["dataset_params"] = new JsonObject { ["im_path"] = data, ["im_channels"] = 1, ["im_size"] = 16, ["name"] = "tiny" },
        ["diffusion_params"] = new JsonObject { ["num_timesteps"] = 100, ["beta_start"] = 0.0015, ["beta_end"] = 0.0195 },
        ["autoencoder_params"] = new JsonObject
        {
            ["z_channels"] = 3, ["codebook_size"] = 8, ["down_channels"] = new JsonArray(8, 8, 8), ["mid_channels"] = new JsonArray(8, 8),
            ["down_sample"] = new JsonArray(true, true), ["attn_down"] = new JsonArray(false, false), ["norm_channels"] = 4,
            ["num_heads"] = 2, ["num_down_layers"] = 1, ["num_mid_layers"] = 1, ["num_up_layers"] = 1,
        },
        ["ldm_params"] = new JsonObject
        {
            ["down_channels"] = new JsonArray(8, 16, 16), ["mid_channels"] = new JsonArray(16, 16),
            ["down_sample"] = new JsonArray(false, false), ["attn_down"] = new JsonArray(true, true), ["time_emb_dim"] = 16,
            ["norm_channels"] = 4, ["num_heads"] = 2, ["conv_out_channels"] = 8,
            ["num_down_layers"] = 1, ["num_mid_layers"] = 1, ["num_up_layers"] = 1,
        },
        ["train_params"] = new JsonObject
        {
            ["seed"] = 7, ["task_name"] = "tiny", ["ldm_batch_size"] = 8, ["autoencoder_batch_size"] = 8, ["disc_start"] = 3,
            ["disc_weight"] = 0.5, ["codebook_weight"] = 1, ["commitment_beta"] = 0.2, ["perceptual_weight"] = 1, ["kl_weight"] = 0.000005,
            ["ldm_epochs"] = 2, ["autoencoder_epochs"] = 1, ["num_samples"] = 4, ["num_grid_rows"] = 2, ["ldm_lr"] = 0.001,
            ["autoencoder_lr"] = 0.001, ["autoencoder_acc_steps"] = 2, ["autoencoder_img_save_steps"] = 4, ["save_latents"] = true,
            ["lpips"] = "resnet18", ["ldm_log_steps"] = 2,
        },
    };

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
