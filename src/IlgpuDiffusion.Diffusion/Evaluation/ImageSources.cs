using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Training;
using SixLabors.ImageSharp;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>The image sets `evaluate` compares, named by a path.</summary>
public static class ImageSources
{
    /// <summary>
    /// <list type="bullet">
    /// <item>an IDX images file (…-images-idx3-ubyte[.gz]);</item>
    /// <item>a folder of IDX files: its test split (t10k-…) when present, else its training split;</item>
    /// <item>a task folder (the output of `sample --count`): its samples/images;</item>
    /// <item>any other folder: every png/jpg/bmp image under it, at the first image's size, read as RGB
    /// (a grey image gives three equal channels, as the feature networks repeat grey anyway).</item>
    /// </list>
    /// With <paramref name="withLabels"/>, IDX data also opens its labels file (for the classifier).
    /// </summary>
    public static IImageDataset Open(string path, bool withLabels = false)
    {
        if (File.Exists(path)) return IdxDataset.Open(path, withLabels: withLabels);
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"{path}: neither an image folder, an IDX file nor a task folder");
        if (TrainingRun.HasIdxImages(path, ""))
            return IdxDataset.Open(path, TrainingRun.HasIdxImages(path, "t10k-") ? IdxSplit.Test : IdxSplit.Train, withLabels);
        string samples = Path.Combine(path, "samples", "images");
        string folder = Directory.Exists(samples) ? samples : path;
        string first = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg" or ".bmp")
            .Order(StringComparer.Ordinal)
            .FirstOrDefault() ?? throw new InvalidDataException($"{folder}: no png/jpg/bmp images (nor IDX files, nor samples/images)");
        var info = Image.Identify(first);
        return new ImageFolderDataset(folder, 3, Math.Min(info.Width, info.Height), skipUnreadable: false);
    }
}
