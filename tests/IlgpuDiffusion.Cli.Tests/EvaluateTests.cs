using System.Text.Json;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>`evaluate` on the tiny project's IDX data (a small ResNet18 input keeps it quick).</summary>
public class EvaluateTests
{
    [Fact]
    public void A_set_against_itself_is_at_distance_zero_with_full_precision_and_recall()
    {
        using var project = new TinyProject(images: 16);
        string data = Path.Combine(project.Folder, "data");
        string json = Path.Combine(project.Folder, "self.json");
        // the tiny project draws its training and test images alike: invert the training pixels (after the 16-byte
        // header) so the two splits differ (a distance of identical sets came out as ±1e-14 depending on summation order)
        string training = Path.Combine(data, "train-images-idx3-ubyte");
        var bytes = File.ReadAllBytes(training);
        for (int i = 16; i < bytes.Length; i++) bytes[i] = (byte)(255 - bytes[i]);
        File.WriteAllBytes(training, bytes);
        var result = Ildm.RunIn(project.Folder, "evaluate", "--real", data, "--fake", training,
            "--fake", data, "--count", "12", "--image-size", "64", "--device", "cpu", "--json", json);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("FD-ResNet18", result.Output);
        var reports = JsonDocument.Parse(File.ReadAllText(json)).RootElement;
        Assert.Equal(2, reports.GetArrayLength());
        Assert.Contains("t10k", reports[0].GetProperty("real").GetString()); // a folder of IDX files gives its test split
        Assert.True(reports[0].GetProperty("fd").GetDouble() > 0); // training and test images differ

        var report = reports[1]; // the test split against itself
        Assert.Equal(0, report.GetProperty("fd").GetDouble(), 1e-6);
        Assert.Equal(1, report.GetProperty("precision").GetDouble());
        Assert.Equal(1, report.GetProperty("recall").GetDouble());
    }

    [Fact]
    public void A_missing_set_is_named()
    {
        using var project = new TinyProject(images: 16);
        var result = Ildm.RunIn(project.Folder, "evaluate", "--real", "no-such-folder", "--fake", "data", "--device", "cpu");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no-such-folder", result.Error);
    }
}
