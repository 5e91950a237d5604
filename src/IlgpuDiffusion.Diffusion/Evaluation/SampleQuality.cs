using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>One comparison of a generated (or any second) image set with a real one, on one feature network.</summary>
public sealed record SampleQualityReport(
    string Features,
    string Real,
    int RealCount,
    string Fake,
    int FakeCount,
    double Fd,
    double KidMean,
    double KidStd,
    int KidSubsets,
    int KidSubsetSize,
    double Precision,
    double Recall,
    int NearestNeighbours,
    double Seconds)
{
    /// <summary>The predicted-class histogram of the fake images (classifier features only): mode coverage.</summary>
    public int[]? PredictedClasses { get; init; }

    [JsonIgnore]
    public string Summary =>
        $"FD-{Features} {Fd:F3}  KID-{Features} {KidMean:E3} ± {KidStd:E2}  precision {Precision:F3}  recall {Recall:F3}  "
        + $"({FakeCount} of {Fake} vs {RealCount} of {Real}; {Seconds:F0} s)";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>`evaluate`: features of the first N images of each set, then FD, KID and precision/recall. KID subsets hold
/// half of the smaller set (at most 1000, torch-fidelity's size), so that they differ and their spread means something.</summary>
public static class SampleQuality
{
    public const int NearestNeighbours = 3;

    public static SampleQualityReport Compare(IFeatureExtractor extractor, IImageDataset real, IImageDataset fake, int count,
        Device device, TextWriter? log = null)
    {
        long start = Stopwatch.GetTimestamp();
        var realFeatures = FeatureExtraction.Extract(extractor, real, count, device, log: log);
        var fakeFeatures = FeatureExtraction.Extract(extractor, fake, count, device, log: log);
        return Compare(extractor.Name, realFeatures, real.Name, fakeFeatures, fake.Name, start);
    }

    /// <param name="startTimestamp">When the work began (Stopwatch timestamp), for the report's seconds.</param>
    public static SampleQualityReport Compare(string features, FeatureMatrix real, string realName, FeatureMatrix fake, string fakeName,
        long startTimestamp)
    {
        var comparison = new FeatureComparison(real, fake);
        var kid = comparison.KernelInceptionDistance(subsetSize: Math.Min(1000, Math.Min(real.Count, fake.Count) / 2));
        var (precision, recall) = comparison.PrecisionRecall(NearestNeighbours);
        return new SampleQualityReport(features, realName, real.Count, fakeName, fake.Count, comparison.FrechetDistance(),
            kid.Mean, kid.Std, kid.Subsets, kid.SubsetSize, precision, recall, NearestNeighbours,
            Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
    }
}
