using System.CommandLine;
using System.Text.Json;
using IlgpuDiffusion.Diffusion.Evaluation;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>`evaluate`: FD, KID and precision/recall between two image sets on a frozen network's features.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        const string sources = "an image folder, an IDX images file, a folder of IDX files (its t10k test split when present) "
            + "or a task folder (its samples/images, written by `sample --count`)";
        var real = new Option<string>("--real") { Description = "the real images: " + sources, Required = true };
        var fake = new Option<string[]>("--fake")
        {
            Description = "the images to judge: same kinds as --real; repeatable (each is compared with --real, whose features are "
                + "computed once)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var count = new Option<int>("--count")
        {
            Description = "the first N images of each set (the statistics' cost grows with N²)",
            DefaultValueFactory = _ => 1000,
        };
        var features = new Option<string>("--features")
        {
            Description = "resnet18: the 512-d pooled features of the ImageNet ResNet18 the project ships (FD-ResNet18; not FID, "
                + "which uses Inception-v3). Grey images are repeated to 3 channels, resized bilinearly to --image-size² "
                + "(PyTorch's interpolate, align_corners=False) and mapped to the network's input (0–255, BGR, minus the "
                + "ImageNet channel means). classifier: the 128-d features of the classifier of `ildm train-classifier` "
                + "(see --classifier), plus its predicted-class histogram of the fake images (mode coverage)",
            DefaultValueFactory = _ => "resnet18",
        };
        features.AcceptOnlyFromAmong("resnet18", "classifier");
        var classifier = new Option<string?>("--classifier")
        {
            Description = $"with --features classifier: its weights ({ImageClassifier.FileName}) or the task folder holding them; "
                + "default: the first --fake task folder's",
        };
        var imageSize = new Option<int>("--image-size")
        {
            Description = "the ResNet18 input size, a multiple of 32 (224: the network's own; smaller is cheaper, "
                + "and its numbers compare only with others at that size)",
            DefaultValueFactory = _ => ResNet18Features.DefaultImageSize,
        };
        var json = new Option<FileInfo>("--json")
        {
            Description = "where to write the results as JSON (a list: one entry per --fake)",
            DefaultValueFactory = _ => new FileInfo("evaluation.json"),
        };
        var device = CommonOptions.Device();
        var command = new Command("evaluate",
            "Compare two image sets: Fréchet distance, KID (unbiased, cubic kernel, mean ± std over 100 subsets) and "
            + "k-NN precision/recall (k = 3) on frozen network features")
        {
            real, fake, count, features, classifier, imageSize, json, device,
        };
        command.SetAction(parse =>
        {
            var opened = CommonOptions.Open(parse.GetValue(device)!);
            if (opened == null) return 2;
            try
            {
                int n = parse.GetValue(count);
                if (n < 4) throw new ArgumentException($"--count must be at least 4 (precision/recall use 3 neighbours), got {n}");
                int size = parse.GetValue(imageSize);
                if (size < 32 || size % 32 != 0) throw new ArgumentException($"--image-size must be a multiple of 32, got {size}");
                var realImages = ImageSources.Open(parse.GetValue(real)!, "--real");
                var fakeImages = parse.GetValue(fake)!.Select(f => ImageSources.Open(f, "--fake")).ToArray();
                var watch = System.Diagnostics.Stopwatch.StartNew();
                using IFeatureExtractor extractor = parse.GetValue(features) == "classifier"
                    ? new ClassifierFeatures(
                        ImageClassifier.Load(opened, ClassifierWeights(parse.GetValue(classifier), parse.GetValue(fake)![0])))
                    : new ResNet18Features(opened, parse.GetValue(imageSize));
                var reports = SampleQuality.Compare(extractor, realImages, fakeImages, n, opened, Console.Out);
                foreach (var report in reports) Console.WriteLine($"evaluate: {report.Summary}");
                var path = parse.GetValue(json)!.FullName;
                File.WriteAllText(path, JsonSerializer.Serialize(reports, SampleQualityReport.Json));
                Console.WriteLine($"evaluate: {path} ({watch.Elapsed.TotalSeconds:F0} s)");
                return 0;
            }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException
                                          or ArgumentException or InvalidOperationException or IOException
                                          or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    private static string ClassifierWeights(string? given, string fake)
    {
        string path = given ?? fake;
        if (Directory.Exists(path)) path = Path.Combine(path, ImageClassifier.FileName);
        return File.Exists(path) ? path
            : throw new FileNotFoundException($"no classifier weights at {path}: run `ildm train-classifier` (with the config of the "
                + "task) first, or pass --classifier with the file or its task folder", path);
    }
}
