using System.Text.Json;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>`train-classifier` and `evaluate --features classifier` on the tiny project, labelled by where its square is.</summary>
public class ClassifierTests
{
    private static void WriteLabels(string path, int count)
    {
        using var writer = new BinaryWriter(File.Create(path));
        foreach (int v in new[] { 0x00000801, count }) writer.Write(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v));
        // left or right: TinyProject's square sits at x = 3 + i % 7
        for (int i = 0; i < count; i++) writer.Write((byte)(i % 7 < 3 ? 0 : 1));
    }

    [Fact]
    public void A_trained_classifier_gives_features_and_the_predicted_class_histogram_of_the_fake_images()
    {
        using var project = new TinyProject(images: 48);
        string data = Path.Combine(project.Folder, "data");
        WriteLabels(Path.Combine(data, "train-labels-idx1-ubyte"), 48);
        WriteLabels(Path.Combine(data, "t10k-labels-idx1-ubyte"), 16);
        var trained = project.Run("train-classifier", "--epochs", "3");
        Assert.True(trained.ExitCode == 0, trained.ToString());
        Assert.Contains("accuracy", trained.Output);
        Assert.True(File.Exists(Path.Combine(project.Task, "classifier.safetensors")));

        string json = Path.Combine(project.Folder, "classifier.json");
        var result = Ildm.RunIn(project.Folder, "evaluate", "--real", data, "--fake", Path.Combine(data, "train-images-idx3-ubyte"),
            "--count", "16", "--features", "classifier", "--classifier", project.Task, "--device", "cpu", "--json", json);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("FD-classifier", result.Output);
        var report = JsonDocument.Parse(File.ReadAllText(json)).RootElement[0];
        var histogram = report.GetProperty("predicted_classes").EnumerateArray().Select(c => c.GetInt32()).ToArray();
        Assert.Equal(2, histogram.Length);
        Assert.Equal(16, histogram.Sum());
    }

    [Fact]
    public void Classifier_features_without_weights_say_how_to_get_them()
    {
        using var project = new TinyProject(images: 16);
        var result = Ildm.RunIn(project.Folder, "evaluate", "--real", "data", "--fake", "data", "--features", "classifier",
            "--device", "cpu");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("train-classifier", result.Error);
    }
}
