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
    /// With <paramref name="withLabels"/>, IDX data also opens its labels file (for the classifier). Errors name
    /// <paramref name="option"/>, the option that gave the path.
    /// </summary>
    public static IImageDataset Open(string path, string option, bool withLabels = false)
    {
        if (File.Exists(path)) return IdxDataset.Open(path, withLabels: withLabels);
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"{path} ({option}): neither an image folder, an IDX file nor a task folder");
        if (TrainingRun.HasIdxImages(path, ""))
            return IdxDataset.Open(path, TrainingRun.HasIdxImages(path, "t10k-") ? IdxSplit.Test : IdxSplit.Train, withLabels);
        string samples = Path.Combine(path, "samples", "images");
        string folder = Directory.Exists(samples) ? samples : path;
        // only regular files (a FIFO has no length, and opening it would block): the data set reports the others by name
        string first = ImageFolderWalk.Files(folder, ImageFolderDataset.Extensions).Files
            .Where(f => new FileInfo(f).Length > 0)
            .Order(StringComparer.Ordinal)
            .FirstOrDefault() ?? throw new InvalidDataException(
                $"{folder} ({option}): no png/jpg/bmp images (nor IDX files, nor samples/images)");
        return new ImageFolderDataset(folder, 3, ShortSide(first), skipUnreadable: false, advice: ImageFolderAdvice.Option(option));
    }

    private static int ShortSide(string image)
    {
        IImageInfo? info;
        try
        {
            info = Image.Identify(image);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{image}: unreadable image: {e.Message}", e);
        }
        return info is { Width: > 0, Height: > 0 } ? Math.Min(info.Width, info.Height)
            : throw new InvalidDataException($"{image}: not a recognised image format");
    }
}
