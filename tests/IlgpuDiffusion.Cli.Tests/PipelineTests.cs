using System.Buffers.Binary;
using System.Text.RegularExpressions;
using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>The whole pipeline through the `ildm` executable on a tiny synthetic data set.</summary>
public class PipelineTests
{
    private static void Ok(Ildm.Result result) => Assert.True(result.ExitCode == 0, result.ToString());

    [Fact]
    public void All_four_stages_run_and_write_their_files()
    {
        using var project = new TinyProject();
        Ok(project.Run("train-autoencoder"));
        foreach (var file in new[] { "vqvae_autoencoder_ckpt.safetensors", "vqvae_discriminator_ckpt.safetensors",
                     "vqvae_autoencoder_state.safetensors", "autoencoder_metrics.csv", "autoencoder_losses.png",
                     "vqvae_autoencoder_samples/current_autoencoder_sample_1.png" })
            Assert.True(File.Exists(Path.Combine(project.Task, file)), $"missing {file}");
        var metrics = File.ReadAllLines(Path.Combine(project.Task, "autoencoder_metrics.csv"));
        Assert.Equal(7, metrics.Length); // header + 48 images / batch 8
        Assert.NotEqual("", metrics[^1].Split(',')[^1]); // the discriminator trained after disc_start

        var infer = project.Run("infer-autoencoder");
        Ok(infer);
        Assert.Contains("PSNR", infer.Output);
        Assert.Contains("codebook usage", infer.Output);
        Assert.Matches(@"SSIM -?\d\.\d{4}", infer.Output);
        Assert.Contains("perplexity", infer.Output);
        Assert.Contains("reconstructions vs their images (the floor for samples): FD-ResNet18", infer.Output);
        foreach (var file in new[] { "input_samples.png", "encoded_samples.png", "reconstructed_samples.png", "vqvae_latents.safetensors" })
            Assert.True(File.Exists(Path.Combine(project.Task, file)), $"missing {file}");

        var ldm = project.Run("train-ldm", "--set", "train_params:ema_decay=0.9");
        Ok(ldm);
        Assert.Contains("latents from", ldm.Output);
        Assert.True(File.Exists(Path.Combine(project.Task, "ddpm_ckpt.safetensors")));
        Assert.True(File.Exists(Path.Combine(project.Task, "ddpm_ema_ckpt.safetensors")));
        Assert.True(File.Exists(Path.Combine(project.Task, "ldm_losses.png")));

        var ddim = project.Run("sample", "--sampler", "ddim", "--steps", "5", "--save-every", "2", "--grid-scale", "3");
        Ok(ddim);
        Assert.Contains("ddpm_ema_ckpt", ddim.Output); // sampling uses the EMA weights when present
        Assert.True(File.Exists(Path.Combine(project.Task, "samples", "x0_0.png")));
        Ok(project.Run("sample")); // the original's DDPM over all 100 steps
        // the first grid was drawn 3 times larger than the second
        var (large, small) = (PngSize(Path.Combine(project.Task, "samples", "samples.png")),
            PngSize(Path.Combine(project.Task, "samples", "samples_2.png")));
        Assert.Equal((3 * small.Width, 3 * small.Height), large);
    }

    [Fact]
    public void A_resumed_ldm_run_ends_with_the_same_weights_as_an_uninterrupted_one()
    {
        using var project = new TinyProject(images: 24);
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000"));
        Ok(project.Run("train-ldm", "--set", "train_params:ldm_epochs=4"));
        string ckpt = Path.Combine(project.Task, "ddpm_ckpt.safetensors");
        var straight = SafeTensors.Read(ckpt);

        Ok(project.Run("train-ldm", "--overwrite", "--set", "train_params:ldm_epochs=2"));
        Ok(project.Run("train-ldm", "--resume", "--set", "train_params:ldm_epochs=4"));
        var resumed = SafeTensors.Read(ckpt);
        Assert.Equal(straight.Keys, resumed.Keys);
        foreach (var (name, tensor) in straight)
            Assert.True(tensor.Floats!.SequenceEqual(resumed[name].Floats!), $"{name} differs after resume");
    }

    /// <summary>Class-conditional training resumes exactly (the condition dropout draws included), and sampling a class
    /// with guidance is the same picture for the same seed.</summary>
    [Fact]
    public void A_class_conditional_run_resumes_exactly_and_samples_reproducibly()
    {
        using var project = new TinyProject(images: 24, numClasses: 3);
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000"));
        Ok(project.Run("infer-autoencoder")); // the latent cache keeps the labels
        Assert.Equal([0, 1, 2, 0], SafeTensors.Read(Path.Combine(project.Task, "vqvae_latents.safetensors"))["labels"].Ints![..4]);
        var fromCache = project.Run("train-ldm", "--set", "train_params:ldm_epochs=4");
        Ok(fromCache);
        Assert.Contains("latents from", fromCache.Output);
        string ckpt = Path.Combine(project.Task, "ddpm_ckpt.safetensors");
        var straight = SafeTensors.Read(ckpt);
        Ok(project.Run("train-ldm", "--overwrite", "--set", "train_params:ldm_epochs=2"));
        Ok(project.Run("train-ldm", "--resume", "--set", "train_params:ldm_epochs=4"));
        var resumed = SafeTensors.Read(ckpt);
        Assert.Contains("class_emb.weight", resumed.Keys);
        foreach (var (name, tensor) in straight)
            Assert.True(tensor.Floats!.SequenceEqual(resumed[name].Floats!), $"{name} differs after resume");
        Assert.Equal("[\"0\",\"1\",\"2\"]", File.ReadAllText(Path.Combine(project.Task, "classes.json")));

        byte[] Sample(params string[] extra)
        {
            var result = project.Run(["sample", "--sampler", "ddim", "--steps", "3", .. extra]);
            Ok(result);
            return File.ReadAllBytes(Regex.Match(result.Output, @"sample: grid (.+?\.png)").Groups[1].Value); // each run its own grid
        }
        var first = Sample("--class", "2", "--guidance", "2.5");
        Assert.Equal(first, Sample("--class", "2", "--guidance", "2.5"));
        Assert.NotEqual(first, Sample("--class", "2", "--guidance", "2.5", "--seed", "8"));
        var everyClass = project.Run("sample", "--sampler", "ddim", "--steps", "3");
        Ok(everyClass);
        Assert.Contains("classes 0, 1, 2", everyClass.Output);
        var unknown = project.Run("sample", "--class", "sneaker");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("--class sneaker", unknown.Error);

        // exported samples carry the class each was asked for (i / num_grid_rows mod classes), and the classifier of
        // `evaluate` reports which share it sees as that class
        var exported = project.Run("sample", "--sampler", "ddim", "--steps", "3", "--count", "7", "--batch-size", "4");
        Ok(exported);
        string grid = Regex.Match(exported.Output, @"sample: grid (.+?\.png)").Groups[1].Value;
        var requested = RequestedClasses.Load(Path.Combine(project.Task, "samples", "images"))!;
        Assert.Equal(["0", "1", "2"], requested.ClassNames);
        Assert.Equal([0, 0, 1, 1, 2, 2, 0], Enumerable.Range(0, 7).Select(i => requested.Files[$"sample_{i:D6}.png"]));
        var shown = SixLabors.ImageSharp.Image.Identify(grid); // one row of 2 per class, 16-pixel images, 2 pixels apart
        Assert.Equal((2 + 2 * 18, 2 + 3 * 18), (shown.Width, shown.Height));
        Ok(project.Run("train-classifier", "--epochs", "1"));
        string json = Path.Combine(project.Folder, "evaluation.json");
        Ok(Ildm.RunIn(project.Folder, "evaluate", "--real", "data", "--fake", project.Task, "--count", "7", "--features", "classifier",
            "--device", "cpu", "--json", json));
        var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json)).RootElement[0];
        double share = report.GetProperty("requested_class_share").GetDouble();
        Assert.InRange(share, 0, 1);
        Assert.Equal(3, report.GetProperty("requested_class_shares").GetArrayLength());
    }

    [Fact]
    public void A_class_condition_the_data_does_not_provide_fails_before_training_naming_the_key()
    {
        using var project = new TinyProject(images: 16, numClasses: 3);
        File.Delete(project.LabelsPath!);
        var result = project.Run("train-autoencoder");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("ldm_params.condition_config.condition_types lists 'class'", result.Error);
        Assert.False(File.Exists(Path.Combine(project.Task, "vqvae_autoencoder_ckpt.safetensors")));
    }

    [Fact]
    public void A_resumed_autoencoder_run_matches_an_uninterrupted_one()
    {
        using var project = new TinyProject(images: 32);
        Ok(project.Run("train-autoencoder", "--set", "train_params:autoencoder_epochs=2"));
        string ckpt = Path.Combine(project.Task, "vqvae_autoencoder_ckpt.safetensors");
        var straight = SafeTensors.Read(ckpt);
        Ok(project.Run("train-autoencoder", "--overwrite"));
        Ok(project.Run("train-autoencoder", "--resume", "--set", "train_params:autoencoder_epochs=2"));
        var resumed = SafeTensors.Read(ckpt);
        Assert.Equal(straight.Keys, resumed.Keys);
        foreach (var (name, tensor) in straight)
            Assert.True(tensor.Floats!.SequenceEqual(resumed[name].Floats!), $"{name} differs after resume");
    }

    [Fact]
    public void Starting_over_an_earlier_run_needs_resume_or_overwrite()
    {
        using var project = new TinyProject(images: 16);
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000"));
        var again = project.Run("train-autoencoder");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("--resume", again.Error);
        Assert.Contains("vqvae_autoencoder_ckpt.safetensors", again.Error);
    }

    [Fact]
    public void A_diverging_loss_stops_the_run_naming_the_step_and_the_term()
    {
        using var project = new TinyProject(images: 32);
        var result = project.Run("train-autoencoder",
            "--set", "train_params:autoencoder_lr=1e30", "--set", "train_params:autoencoder_acc_steps=1");
        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"loss term '\w+' is (NaN|-?∞|-?Infinity) at step \d+", result.Error);
    }

    [Fact]
    public void Stages_that_need_an_earlier_one_name_the_missing_checkpoint()
    {
        using var project = new TinyProject(images: 16);
        var result = project.Run("train-ldm");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("vqvae_autoencoder_ckpt.safetensors", result.Error);
        Assert.Contains("train-autoencoder", result.Error);
    }

    [Fact]
    public void A_config_error_names_the_key()
    {
        using var project = new TinyProject(images: 16);
        var typo = project.Run("train-autoencoder", "--set", "train_params:autoencoder_epoch=3");
        Assert.Equal(2, typo.ExitCode);
        Assert.Contains("autoencoder_epoch", typo.Error);
        var rule = project.Run("train-autoencoder", "--set", "autoencoder_params:mid_channels=[8,16]");
        Assert.Equal(2, rule.ExitCode);
        Assert.Contains("mid_channels", rule.Error);
        // a value from --set is blamed on the override, not on the config file
        var size = project.Run("train-autoencoder", "--set", "dataset_params:im_size=30");
        Assert.Equal(2, size.ExitCode);
        Assert.Contains("error: --set dataset_params:im_size=30: dataset_params.im_size must be divisible by 4", size.Error);
        Assert.DoesNotContain(project.ConfigPath, size.Error);
        Assert.False(File.Exists(Path.Combine(project.Task, "vqvae_autoencoder_ckpt.safetensors")));
    }

    [Fact]
    public void A_truncated_checkpoint_is_reported_with_its_path()
    {
        using var project = new TinyProject(images: 16);
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000"));
        string ckpt = Path.Combine(project.Task, "vqvae_autoencoder_ckpt.safetensors");
        var bytes = File.ReadAllBytes(ckpt);
        File.WriteAllBytes(ckpt, bytes[..(bytes.Length - 100)]);
        var result = project.Run("infer-autoencoder");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(ckpt, result.Error);
    }

    [Fact]
    public void The_original_pth_checkpoint_imports_and_loads()
    {
        string pth = Fixtures.Path("pth/vqvae_tiny_pth.pth");
        string target = Path.Combine(Directory.CreateTempSubdirectory("ildm-import-").FullName, "vqvae.safetensors");
        var result = Ildm.Run("import", pth, "--out", target);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(PthReader.Read(pth).Keys, SafeTensors.Read(target).Keys);
    }

    /// <summary>A PNG's width and height, from its IHDR chunk.</summary>
    private static (int Width, int Height) PngSize(string path)
    {
        var header = File.ReadAllBytes(path)[16..24];
        return (BinaryPrimitives.ReadInt32BigEndian(header), BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4)));
    }
}
