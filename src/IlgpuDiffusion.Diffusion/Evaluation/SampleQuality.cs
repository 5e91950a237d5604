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
    int NearestNeighbours)
{
    /// <summary>The predicted-class histogram of the fake images (classifier features only): mode coverage.</summary>
    public int[]? PredictedClasses { get; init; }

    [JsonIgnore]
    public string Summary =>
        $"FD-{Features} {Fd:F3}  KID-{Features} {KidMean:E3} ± {KidStd:E2}  precision {Precision:F3}  recall {Recall:F3}  "
        + $"({FakeCount} of {Fake} vs {RealCount} of {Real})"
        + (PredictedClasses is { } classes
            ? $"\n  predicted classes of the fake images: [{string.Join(", ", classes)}], "
                + $"{classes.Count(c => c > 0)} of {classes.Length} present"
            : "");

    /// <summary>JSON for the reports; a measure that is not finite (features that overflowed) is written as null, which
    /// every JSON reader accepts, where NaN or Infinity would make the file invalid JSON.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new FiniteOrNull() },
    };

    private sealed class FiniteOrNull : JsonConverter<double>
    {
        public override bool HandleNull => true;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}

/// <summary>`evaluate`: features of the first N images of each set, then FD, KID and precision/recall. KID subsets hold
/// half of the smaller set (at most 1000, torch-fidelity's size), so that they differ and their spread means something.</summary>
public static class SampleQuality
{
    public const int NearestNeighbours = 3;

    /// <summary>Compares the first <paramref name="count"/> images of each fake set with those of the real set (whose
    /// features are computed once); with classifier features, a report also holds the predicted-class histogram of
    /// its fake images.</summary>
    public static IReadOnlyList<SampleQualityReport> Compare(IFeatureExtractor extractor, IImageDataset real,
        IReadOnlyList<IImageDataset> fakes, int count, Device device, TextWriter? log = null)
    {
        var realFeatures = FeatureExtraction.Extract(extractor, real, count, device, log: log);
        var reports = new List<SampleQualityReport>();
        foreach (var fake in fakes)
        {
            var fakeFeatures = FeatureExtraction.Extract(extractor, fake, count, device, log: log);
            var report = Compare(extractor.Name, realFeatures, real.Name, fakeFeatures, fake.Name);
            if (extractor is ClassifierFeatures classifier)
            {
                var histogram = new int[classifier.Classifier.Classes];
                foreach (int c in Predict(classifier, fake, count, device)) histogram[c]++;
                report = report with { PredictedClasses = histogram };
            }
            reports.Add(report);
        }
        return reports;
    }

    /// <summary>The classifier's predicted class for each of the first <paramref name="count"/> images.</summary>
    public static int[] Predict(ClassifierFeatures classifier, IImageDataset images, int count, Device device, int batchSize = 256)
    {
        count = Math.Min(count, images.Count);
        var predicted = new int[count];
        using var noGrad = Autograd.NoGrad();
        for (int start = 0; start < count; start += batchSize)
        {
            using var scope = new TensorScope();
            int n = Math.Min(batchSize, count - start);
            var x = images.Batch(Enumerable.Range(start, n).ToArray(), device);
            classifier.Predict(x).CopyTo(predicted, start);
        }
        return predicted;
    }

    public static SampleQualityReport Compare(string features, FeatureMatrix real, string realName, FeatureMatrix fake, string fakeName)
    {
        var comparison = new FeatureComparison(real, fake);
        var kid = comparison.KernelInceptionDistance(subsetSize: Math.Min(1000, Math.Min(real.Count, fake.Count) / 2));
        var (precision, recall) = comparison.PrecisionRecall(NearestNeighbours);
        return new SampleQualityReport(features, realName, real.Count, fakeName, fake.Count, comparison.FrechetDistance(),
            kid.Mean, kid.Std, kid.Subsets, kid.SubsetSize, precision, recall, NearestNeighbours);
    }
}
