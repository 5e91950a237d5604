namespace IlgpuDiffusion.Cli.Tests;

/// <summary>`sample --count`: many samples as individual PNGs, made in batches.</summary>
public class SampleExportTests
{
    private static void Ok(Ildm.Result result) => Assert.True(result.ExitCode == 0, result.ToString());

    [Fact]
    public void Sample_count_gives_the_same_images_for_the_same_seed_whatever_the_batch_size()
    {
        using var project = new TinyProject(images: 16);
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000"));
        Ok(project.Run("train-ldm", "--set", "train_params:ldm_epochs=1"));
        string Folder(string name) => Path.Combine(project.Folder, name);
        // DDPM draws fresh noise at every step, so per-sample streams matter at each one
        Ok(project.Run("sample", "--count", "5", "--batch-size", "2", "--out", Folder("by2")));
        Ok(project.Run("sample", "--count", "5", "--batch-size", "5", "--out", Folder("by5")));
        Ok(project.Run("sample", "--count", "5", "--batch-size", "5", "--out", Folder("seed8"), "--seed", "8"));

        var names = Directory.GetFiles(Folder("by2")).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"sample_{i:D6}.png"), names);
        foreach (var name in names)
            Assert.Equal(File.ReadAllBytes(Path.Combine(Folder("by2"), name!)), File.ReadAllBytes(Path.Combine(Folder("by5"), name!)));
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(Folder("by5"), names[0]!)),
            File.ReadAllBytes(Path.Combine(Folder("seed8"), names[0]!)));
        Assert.True(File.Exists(Path.Combine(project.Task, "samples", "samples.png")));
    }
}
