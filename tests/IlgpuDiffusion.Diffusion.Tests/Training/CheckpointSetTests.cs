using System.Buffers.Binary;
using System.Text;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

/// <summary>A stage's checkpoints as one set: a save killed between any two of its file writes resumes exactly, and a
/// set mixed from several steps, or damaged training state, is refused naming the file.</summary>
public sealed class CheckpointSetTests : IDisposable
{
    private const int StepsPerEpoch = 2;
    private const int WritesPerSave = 7; // 3 files under ".next", the manifest, 3 renames
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private sealed class SimulatedKill : Exception;

    [Fact]
    public void A_save_killed_between_any_two_writes_resumes_exactly()
    {
        // every run continues the same first epoch, so all start from the same weights
        var firstEpoch = Run("first", epochs: 1);
        Train(firstEpoch, resume: false);
        var straight = Train(CopyOf(firstEpoch, "straight"), resume: true);

        for (int kill = 1; kill <= WritesPerSave; kill++)
        {
            var run = CopyOf(firstEpoch, $"killed-{kill}");
            int writes = 0;
            CheckpointSet.AfterEachWrite.Value = _ => { if (++writes == kill) throw new SimulatedKill(); };
            try
            {
                Assert.Throws<SimulatedKill>(() => Train(run, resume: true)); // killed in the save after step 3
            }
            finally
            {
                CheckpointSet.AfterEachWrite.Value = null;
            }
            var resumed = Train(run, resume: true);
            foreach (var (file, tensors) in straight)
                foreach (var (name, tensor) in tensors)
                    Assert.True(tensor.Floats!.SequenceEqual(resumed[file][name].Floats!),
                        $"killed after write {kill}: {file} '{name}' differs from the uninterrupted run");
        }
    }

    [Fact]
    public void A_full_disk_in_the_first_save_blocks_neither_a_rerun_nor_a_resume()
    {
        for (int failure = 1; failure <= WritesPerSave; failure++)
        {
            var run = Run($"full-{failure}");
            int writes = 0;
            CheckpointSet.AfterEachWrite.Value = _ => { if (++writes == failure) throw new IOException("No space left on device"); };
            try
            {
                Assert.Throws<IOException>(() => Train(run, resume: false)); // the save after step 1
            }
            finally
            {
                CheckpointSet.AfterEachWrite.Value = null;
            }
            // before its manifest (write 4) the save committed nothing: the run starts again; after it, the run resumes
            // (exactly: see A_save_killed_between_any_two_writes_resumes_exactly)
            Train(run, resume: failure >= 4);
            foreach (var stem in new[] { "vqvae_autoencoder_ckpt", "vqvae_discriminator_ckpt", "vqvae_autoencoder_state" })
                Assert.Equal($"{2 * StepsPerEpoch}", SafeTensors.ReadMetadata(run.File(stem + ".safetensors"))[CheckpointSet.StepKey]);
            Assert.Empty(Directory.EnumerateFiles(run.TaskFolder, "*" + CheckpointSet.Pending + "*"));
        }
    }

    [Fact]
    public void A_set_mixed_from_two_steps_is_refused_naming_the_files()
    {
        var run = Run("torn");
        Train(run, resume: false);
        string discriminator = run.File("vqvae_discriminator_ckpt.safetensors");
        SafeTensors.Write(discriminator, SafeTensors.Read(discriminator), CheckpointSet.StepMetadata(StepsPerEpoch));

        var error = Assert.Throws<InvalidDataException>(() => Train(run, resume: true));

        Assert.Contains("torn", error.Message);
        Assert.Contains($"{discriminator} (step {StepsPerEpoch})", error.Message);
        Assert.Contains(run.File("vqvae_autoencoder_ckpt.safetensors"), error.Message);
    }

    [Fact]
    public void A_reader_leaves_a_save_in_progress_alone()
    {
        var run = Run("reader");
        Train(run, resume: false);
        string model = run.File("vqvae_autoencoder_ckpt.safetensors"), state = run.File("vqvae_autoencoder_state.safetensors");
        var set = StageFiles.SetOf(state, [model, run.File("vqvae_discriminator_ckpt.safetensors")]);
        // a training run saving beside the reader: its first file written under ".next", its manifest not yet
        SafeTensors.Write(model + ".next", SafeTensors.Read(model), CheckpointSet.StepMetadata(2 * StepsPerEpoch + 1));

        Assert.Equal(model, set.CommittedPaths()[model]);
        Assert.True(File.Exists(model + ".next"), "the reader removed the ongoing save's file");
    }

    [Fact]
    public void A_file_of_an_earlier_set_is_not_read_and_is_retired_once_a_new_set_is_in_place()
    {
        string model = Path.Combine(_folder.Path, "ckpt.safetensors"), ema = Path.Combine(_folder.Path, "ema_ckpt.safetensors");
        string state = Path.Combine(_folder.Path, "state.safetensors");
        const long step = 3; // the earlier set's step too: its moving average is not told apart by its step
        StageFiles.SetOf(state, [model, ema]).Save(step, WriteStep);
        var withoutEma = StageFiles.SetOf(state, [model], formerFiles: [ema]);
        CheckpointSet.AfterEachWrite.Value = path => { if (path == state) throw new SimulatedKill(); }; // the last rename
        try
        {
            Assert.Throws<SimulatedKill>(() => withoutEma.Save(step, WriteStep));
        }
        finally
        {
            CheckpointSet.AfterEachWrite.Value = null;
        }

        Assert.True(File.Exists(ema), "the earlier set's file was deleted before the new set was in place");
        Assert.Null(StageFiles.SetOf(state, [model, ema]).CommittedPaths()[ema]);
        withoutEma.Recover();
        Assert.False(File.Exists(ema), "resuming left the earlier set's file");

        StageFiles.SetOf(state, [model, ema]).Save(step, WriteStep);
        withoutEma.Save(step, WriteStep);
        Assert.False(File.Exists(ema), "the save left the earlier set's file");

    }

    [Fact]
    public void A_save_cut_short_before_its_manifest_is_not_taken_for_the_committed_one_of_the_same_step()
    {
        string model = Path.Combine(_folder.Path, "ckpt.safetensors"), state = Path.Combine(_folder.Path, "state.safetensors");
        var set = StageFiles.SetOf(state, [model]);
        set.Save(1, WriteStep);
        var committed = SafeTensors.ReadMetadata(model);
        // a run started over with --overwrite, killed in its first save (of the same step) before the manifest
        CheckpointSet.AfterEachWrite.Value = path => { if (path == state + ".next") throw new SimulatedKill(); };
        try
        {
            Assert.Throws<SimulatedKill>(() => set.Save(1, WriteStep));
        }
        finally
        {
            CheckpointSet.AfterEachWrite.Value = null;
        }

        Assert.Equal(model, set.CommittedPaths()[model]);
        set.Recover();
        Assert.False(File.Exists(model + ".next"), "the cut-short save's file was kept");
        Assert.Equal(committed, SafeTensors.ReadMetadata(model));
    }

    /// <summary>Writes a one-value file with the metadata the save gives.</summary>
    private static void WriteStep(string file, string target, IReadOnlyDictionary<string, string> metadata) =>
        SafeTensors.Write(target, [KeyValuePair.Create("w", HostTensor.FromFloats([1], [1f]))], metadata);

    [Theory]
    [InlineData("{not json", "'progress'")]
    [InlineData("[1, 2]", "'progress'")]
    [InlineData("{\"Step\": 4}", "'progress'")]
    [InlineData("{\"Step\": 4, \"Epoch\": 1, \"LoaderState\": \"[7]\"}", "the data loader position '[7]'")]
    public void Garbage_training_state_is_an_error_naming_the_file(string progress, string named)
    {
        var run = Run("garbage");
        Train(run, resume: false);
        string state = run.File("vqvae_autoencoder_state.safetensors");
        var metadata = new Dictionary<string, string>(SafeTensors.ReadMetadata(state)) { ["progress"] = progress };
        SafeTensors.Write(state, SafeTensors.Read(state), metadata);

        var error = Assert.Throws<InvalidDataException>(() => Train(run, resume: true));

        Assert.Contains(state, error.Message);
        Assert.Contains(named, error.Message);
    }

    /// <summary>Trains (or resumes) the tiny autoencoder to the end: epochs of 2 steps, a checkpoint after every
    /// step; returns every checkpoint file's tensors by file name.</summary>
    private static Dictionary<string, IReadOnlyDictionary<string, HostTensor>> Train(TrainingRun run, bool resume)
    {
        new AutoencoderTrainer(run, vae: false, lpipsWeights: null).Train(resume, overwrite: false);
        return new[] { "vqvae_autoencoder_ckpt", "vqvae_discriminator_ckpt" }
            .ToDictionary(stem => stem, stem => SafeTensors.Read(run.File(stem + ".safetensors")));
    }

    /// <summary>A run of the tiny config (2 epochs unless told) whose task folder is a copy of <paramref name="source"/>'s.</summary>
    private TrainingRun CopyOf(TrainingRun source, string name)
    {
        var run = Run(name);
        Directory.CreateDirectory(run.TaskFolder);
        foreach (var file in Directory.EnumerateFiles(source.TaskFolder))
            File.Copy(file, Path.Combine(run.TaskFolder, Path.GetFileName(file)));
        return run;
    }

    private TrainingRun Run(string name, int epochs = 2)
    {
        string data = Path.Combine(_folder.Path, "data");
        Directory.CreateDirectory(data);
        WriteImages(Path.Combine(data, "train-images-idx3-ubyte"), count: 2 * StepsPerEpoch, size: 16);
        var json = $$"""
            {
              "dataset_params": { "im_path": "{{data}}", "im_channels": 1, "im_size": 16, "name": "tiny" },
              "diffusion_params": { "num_timesteps": 10, "beta_start": 0.0015, "beta_end": 0.0195 },
              "autoencoder_params": { "z_channels": 2, "codebook_size": 4, "down_channels": [4, 4], "mid_channels": [4, 4],
                "down_sample": [true], "attn_down": [false], "norm_channels": 2, "num_heads": 1,
                "num_down_layers": 1, "num_mid_layers": 1, "num_up_layers": 1 },
              "ldm_params": { "down_channels": [4, 4], "mid_channels": [4, 4], "down_sample": [false], "attn_down": [false],
                "time_emb_dim": 4, "norm_channels": 2, "num_heads": 1, "conv_out_channels": 4,
                "num_down_layers": 1, "num_mid_layers": 1, "num_up_layers": 1 },
              "train_params": { "seed": 3, "task_name": "tiny", "ldm_batch_size": 2, "autoencoder_batch_size": 2,
                "disc_start": 1, "disc_weight": 0.5, "codebook_weight": 1, "commitment_beta": 0.2, "perceptual_weight": 0,
                "kl_weight": 0, "ldm_epochs": 1, "autoencoder_epochs": {{epochs}}, "num_samples": 1, "num_grid_rows": 1,
                "ldm_lr": 0.001, "autoencoder_lr": 0.01, "autoencoder_acc_steps": 1, "autoencoder_img_save_steps": 1000,
                "save_latents": false, "checkpoint_steps": 1 }
            }
            """;
        var config = ExperimentConfig.Load(new MemoryStream(Encoding.UTF8.GetBytes(json)), name + ".json");
        return new TrainingRun(config, Device.Cpu, Path.Combine(_folder.Path, name), TextWriter.Null);
    }

    private static void WriteImages(string path, int count, int size)
    {
        var bytes = new byte[16 + count * size * size];
        foreach (var (offset, value) in new[] { (0, 0x803), (4, count), (8, size), (12, size) })
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(offset), value);
        for (int i = 16; i < bytes.Length; i++) bytes[i] = (byte)(i * 37 % 251);
        File.WriteAllBytes(path, bytes);
    }
}
