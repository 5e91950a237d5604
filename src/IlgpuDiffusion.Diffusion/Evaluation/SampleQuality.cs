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

    /// <summary>Of the fake images asked for a class (<see cref="RequestedClasses"/>), the share the classifier sees as that
    /// class, overall and per class (null where no image asked for it).</summary>
    public double? RequestedClassShare { get; init; }

    public double?[]? RequestedClassShares { get; init; }

    [JsonIgnore]
    public string Summary =>
        $"FD-{Features} {Fd:F3}  KID-{Features} {KidMean:E3} ± {KidStd:E2}  precision {Precision:F3}  recall {Recall:F3}  "
        + $"({FakeCount} of {Fake} vs {RealCount} of {Real})"
        + (PredictedClasses is { } classes
            ? $"\n  predicted classes of the fake images: [{string.Join(", ", classes)}], "
                + $"{classes.Count(c => c > 0)} of {classes.Length} present"
            : "")
        + (RequestedClassShare is { } share
            ? $"\n  classified as the class asked for: {share:P1} (per class: "
                + string.Join(", ", RequestedClassShares!.Select(s => s is { } v ? $"{v:P0}" : "-")) + ")"
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
                var predicted = Predict(classifier, fake, count, device);
                var histogram = new int[classifier.Classifier.Classes];
                foreach (int c in predicted) histogram[c]++;
                report = report with { PredictedClasses = histogram };
                if (RequestedOf(fake, predicted.Length, classifier.Classifier.Classes) is { } requested)
                {
                    var (overall, perClass) = RequestedClasses.Shares(predicted, requested, histogram.Length);
                    report = report with { RequestedClassShare = overall, RequestedClassShares = perClass };
                }
            }
            reports.Add(report);
        }
        return reports;
    }

    /// <summary>The class each of the first <paramref name="count"/> images of a sample folder was asked for (null: not
    /// asked), or null when the folder has no <see cref="RequestedClasses"/> list.</summary>
    private static int?[]? RequestedOf(IImageDataset images, int count, int classifierClasses)
    {
        if (images is not ImageFolderDataset folder || RequestedClasses.Load(folder.Folder) is not { } list) return null;
        if (list.ClassNames.Count != classifierClasses)
            throw new InvalidDataException($"{Path.Combine(folder.Folder, RequestedClasses.FileName)}: the samples were asked for "
                + $"{list.ClassNames.Count} classes, the classifier knows {classifierClasses}: train it on the model's data");
        var requested = Enumerable.Range(0, count)
            .Select(i => list.Files.TryGetValue(Path.GetRelativePath(folder.Folder, folder.PathOf(i)), out int c) ? (int?)c : null)
            .ToArray();
        return requested.Any(c => c != null) ? requested : null;
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
