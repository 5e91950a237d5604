using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>
/// A small CNN for labelled image sets (`train-classifier`), whose penultimate layer gives features for FD and KID on
/// data far from ImageNet, as the FID authors recommend, and whose predictions show which classes samples cover:
/// conv 3×3 (32) → ReLU → max-pool 2 → conv 3×3 (64) → ReLU → max-pool 2 → linear (128) → ReLU [features] →
/// linear (classes).
/// </summary>
public sealed class ImageClassifier : Layer
{
    public const int FeatureCount = 128;
    public const string FileName = "classifier.safetensors";

    public ImageClassifier(Device device, int channels, int imageSize, int classes, Generator? init = null) : base(device)
    {
        if (imageSize % 4 != 0) throw new ArgumentException($"the classifier needs an image size divisible by 4, got {imageSize}");
        Channels = channels;
        ImageSize = imageSize;
        Classes = classes;
        Conv1 = AddModule("conv1", new Conv2d(device, channels, 32, 3, padding: 1, init: init));
        Conv2 = AddModule("conv2", new Conv2d(device, 32, 64, 3, padding: 1, init: init));
        Hidden = AddModule("fc1", new Linear(device, 64 * (imageSize / 4) * (imageSize / 4), FeatureCount, init: init));
        Output = AddModule("fc2", new Linear(device, FeatureCount, classes, init: init));
    }

    public int Channels { get; }
    public int ImageSize { get; }
    public int Classes { get; }
    public Conv2d Conv1 { get; }
    public Conv2d Conv2 { get; }
    public Linear Hidden { get; }
    public Linear Output { get; }

    /// <summary>A trained classifier; its shape is read off the weights.</summary>
    public static ImageClassifier Load(Device device, string path)
    {
        var state = Checkpoint.ReadStateDict(path);
        int[] Shape(string name) => state.TryGetValue(name, out var t) ? t.Shape
            : throw new InvalidDataException($"{path}: no '{name}': not a classifier written by `ildm train-classifier`");
        int channels = Shape("conv1.weight")[1], classes = Shape("fc2.weight")[0];
        int imageSize = 4 * (int)Math.Round(Math.Sqrt(Shape("fc1.weight")[1] / 64.0));
        var classifier = new ImageClassifier(device, channels, imageSize, classes);
        Checkpoint.LoadModel(classifier, path);
        classifier.Eval();
        return classifier;
    }

    /// <summary>(B, C, S, S) in [−1, 1] → (B, 128) penultimate activations.</summary>
    public Tensor Features(Tensor x)
    {
        x = Tensor.MaxPool2d(Conv1.Forward(x).Relu(), 2, 2);
        x = Tensor.MaxPool2d(Conv2.Forward(x).Relu(), 2, 2);
        return Hidden.Forward(x.Flatten(1)).Relu();
    }

    /// <summary>Class logits, (B, classes).</summary>
    public override Tensor Forward(Tensor x) => Output.Forward(Features(x));

    /// <summary>Mean cross-entropy of the logits against integer labels.</summary>
    public static Tensor CrossEntropy(Tensor logits, int[] labels)
    {
        int classes = logits.Size(1);
        var oneHot = new float[labels.Length * classes];
        for (int i = 0; i < labels.Length; i++) oneHot[i * classes + labels[i]] = 1;
        var shifted = logits - logits.Max(1, keepDim: true); // stable; the log-softmax does not depend on the shift
        var logSoftmax = shifted - shifted.Exp().Sum(1, keepDim: true).Log();
        return (logSoftmax * Tensor.FromArray(oneHot, [labels.Length, classes], logits.Device)).Sum() * (-1f / labels.Length);
    }
}

/// <summary>The classifier's 128-d features for `evaluate --features classifier`: images are brought to its channels (the
/// mean of RGB for a grey classifier) and size (bilinear).</summary>
public sealed class ClassifierFeatures(ImageClassifier classifier) : IFeatureExtractor
{
    public string Name => "classifier";

    public ImageClassifier Classifier { get; } = classifier;

    public Tensor Extract(Tensor images) => Classifier.Features(Prepare(images));

    /// <summary>The predicted class of each image.</summary>
    public int[] Predict(Tensor images) => Classifier.Forward(Prepare(images)).ArgMax(1).ToIntArray();

    private Tensor Prepare(Tensor images)
    {
        if (images.Size(1) != Classifier.Channels)
        {
            images = (images.Size(1), Classifier.Channels) switch
            {
                (3, 1) => images.Mean(1, keepDim: true),
                (1, 3) => images.Expand([images.Size(0), 3, images.Size(2), images.Size(3)]),
                var (have, want) => throw new ArgumentException($"the classifier reads {want}-channel images, these have {have}"),
            };
        }
        return FeatureExtraction.Resize(images, Classifier.ImageSize);
    }

    public void Dispose() => Classifier.Dispose();
}
