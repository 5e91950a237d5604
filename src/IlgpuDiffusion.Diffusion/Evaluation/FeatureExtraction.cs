using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>A frozen network that maps images in [−1, 1] to one feature vector each.</summary>
public interface IFeatureExtractor : IDisposable
{
    /// <summary>How the distances on these features are named, e.g. "ResNet18" (FD-ResNet18).</summary>
    string Name { get; }

    /// <summary>(B, C, S, S) images in [−1, 1] → (B, D) features.</summary>
    Tensor Extract(Tensor images);
}

public static class FeatureExtraction
{
    /// <summary>Features of the first <paramref name="count"/> images, <paramref name="batchSize"/> at a time, without gradients.</summary>
    public static FeatureMatrix Extract(IFeatureExtractor extractor, IImageDataset images, int count, Device device,
        int batchSize = 32, TextWriter? log = null)
    {
        count = Math.Min(count, images.Count);
        double[]? values = null;
        int dimension = 0;
        var bar = new ProgressBar($"features ({extractor.Name})", count, output: log == null || log == Console.Out ? null : log)
        {
            RedirectedEvery = batchSize * 8,
        };
        using var noGrad = Autograd.NoGrad();
        for (int start = 0; start < count; start += batchSize)
        {
            using var scope = new TensorScope();
            int n = Math.Min(batchSize, count - start);
            var x = images.Batch(Enumerable.Range(start, n).ToArray(), device);
            var features = extractor.Extract(x).ToArray();
            dimension = features.Length / n;
            values ??= new double[(long)count * dimension];
            for (int i = 0; i < features.Length; i++) values[(long)start * dimension + i] = features[i];
            bar.Report(start + n);
        }
        bar.Finish();
        return new FeatureMatrix(values ?? throw new InvalidDataException($"{images.Name}: no images"), count, dimension);
    }

    /// <summary>
    /// Bilinear resizing of square images to <paramref name="size"/>² with half-pixel centres (PyTorch's
    /// interpolate(mode="bilinear", align_corners=False), no antialiasing): one (S → size) interpolation matrix
    /// applied along the width, then along the height, as two matrix products.
    /// </summary>
    public static Tensor Resize(Tensor images, int size)
    {
        int b = images.Size(0), c = images.Size(1), s = images.Size(2);
        if (images.Size(3) != s) throw new ArgumentException($"resize: images must be square, got {Tensor.ShapeString(images.Shape)}");
        if (s == size) return images;
        var weights = new float[s * size]; // (S, size): column o holds output pixel o's weights on the input pixels
        for (int o = 0; o < size; o++)
        {
            double source = Math.Max((o + 0.5) * s / size - 0.5, 0);
            int below = Math.Min((int)source, s - 1), above = Math.Min(below + 1, s - 1);
            double fraction = source - below;
            weights[below * size + o] += (float)(1 - fraction);
            weights[above * size + o] += (float)fraction;
        }
        var matrix = Tensor.FromArray(weights, [s, size], images.Device);
        var widthResized = images.Reshape(b * c, s, s).Matmul(matrix);           // (BC, S, size)
        var bothResized = widthResized.Transpose(1, 2).Matmul(matrix);           // (BC, size(w), size(h))
        return bothResized.Transpose(1, 2).Reshape(b, c, size, size);
    }
}
