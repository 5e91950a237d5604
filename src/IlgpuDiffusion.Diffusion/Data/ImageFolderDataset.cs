using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>How much of each file the construction-time scan reads.</summary>
public enum ImageScan
{
    /// <summary>Format and size only (a few KB a file): catches files that are not images or have a
    /// broken header; a file whose pixel data is broken fails later, when the loader reads it.</summary>
    Header,

    /// <summary>Decodes every image once (in parallel): catches broken pixel data too, at the cost of
    /// a full pass over the set. For small sets, or to vet a new one.</summary>
    Decode,
}

/// <summary>
/// Every png/jpg/jpeg/bmp image under a folder (recursively, symbolic links to folders followed once, in
/// ordinal order of the relative path, so indices are the same on every machine), transformed as the reference's datasets do: RGB
/// (im_channels 3) resizes the short side to im_size and centre-crops im_size×im_size; grey
/// (im_channels 1) takes the luminance (PIL's convert('L') weights) and uses it as is when already
/// im_size square, otherwise resizes and crops the same way. Resizing is bilinear with antialiasing
/// (ImageSharp's triangle filter), like torchvision's Resize on PIL images. Values map to [−1, 1].
/// The file list is scanned eagerly at construction (by default every image is decoded once, so an unreadable one
/// follows skip_unreadable_images before training starts; see <see cref="ImageScan"/>); pixels are decoded
/// again on each <see cref="CopyTo"/>, so memory stays small for large sets.
/// </summary>
public sealed class ImageFolderDataset : IImageDataset
{
    internal static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp"];

    /// <summary>The most pixels an image may have (300 MB decoded): above any camera's, far below what a
    /// decompression bomb (a small file of huge dimensions) asks for.</summary>
    public const long MaxPixels = 100_000_000;

    private readonly string[] _paths;

    /// <param name="skipUnreadable">true: an unreadable file is left out and described in
    /// <see cref="Warnings"/>; false: it is an <see cref="InvalidDataException"/> naming it.</param>
    /// <param name="advice">What the errors advise (default: a training config's keys).</param>
    public ImageFolderDataset(string folder, int imageChannels, int imageSize, bool skipUnreadable,
        ImageScan scan = ImageScan.Decode, ImageFolderAdvice? advice = null)
    {
        advice ??= ImageFolderAdvice.TrainingConfig;
        ArgumentNullException.ThrowIfNull(folder);
        if (imageChannels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(imageChannels), imageChannels, "im_channels must be 1 or 3");
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imageSize);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"image folder not found: {folder} ({advice.FolderSetting})");
        }
        Name = $"image folder {folder}";
        Folder = folder;
        ImageChannels = imageChannels;
        ImageSize = imageSize;

        var (files, unreadableFolders) = ImageFolderWalk.Files(folder, Extensions);
        var candidates = files.OrderBy(p => Path.GetRelativePath(folder, p), StringComparer.Ordinal).ToArray();
        var problems = new string?[candidates.Length];
        Parallel.For(0, candidates.Length, i => problems[i] = Probe(candidates[i], scan));

        var warnings = new List<string>();
        foreach (var (path, problem) in unreadableFolders)
        {
            var message = $"{path}: unreadable folder: {problem}";
            if (!skipUnreadable) throw new InvalidDataException($"{message} ({advice.Unreadable})");
            warnings.Add(message + " (skipped)");
        }
        var readable = new List<string>();
        for (int i = 0; i < candidates.Length; i++)
        {
            if (problems[i] is null)
            {
                readable.Add(candidates[i]);
                continue;
            }
            var message = $"{candidates[i]}: unreadable image: {problems[i]}";
            if (!skipUnreadable) throw new InvalidDataException($"{message} ({advice.Unreadable})");
            warnings.Add(message + " (skipped)");
        }
        if (readable.Count == 0)
        {
            throw new InvalidDataException(
                $"no readable {string.Join("/", Extensions)} images under {folder} ({advice.FolderSetting})" +
                (warnings.Count > 0 ? $"; {warnings.Count} unreadable" : ""));
        }
        _paths = readable.ToArray();
        Warnings = warnings;
    }

    public string Name { get; }
    public string Folder { get; }
    public int Count => _paths.Length;
    public int ImageChannels { get; }
    public int ImageSize { get; }

    /// <summary>One line per file left out at construction, with its path and the reason.</summary>
    public IReadOnlyList<string> Warnings { get; }

    public string PathOf(int index)
    {
        this.CheckIndex(index);
        return _paths[index];
    }

    public void CopyTo(int index, Span<float> destination)
    {
        this.CheckIndex(index);
        this.CheckDestination(destination);
        var path = _paths[index];
        try
        {
            using var rgb = ImageDecoding.LoadRgb(path);
            if (ImageChannels == 3)
            {
                ResizeAndCentreCrop(rgb, ImageSize);
                WriteRgb(rgb, destination);
            }
            else
            {
                using var grey = Luminance(rgb);
                ResizeAndCentreCrop(grey, ImageSize);
                WriteGrey(grey, destination);
            }
        }
        catch (Exception e) when (IsDecodeFailure(e))
        {
            throw new InvalidDataException($"{path}: unreadable image: {e.Message}", e);
        }
    }

    /// <summary>An image file's header, or why it has none. Only regular, non-empty files are opened (a FIFO would block
    /// the open forever); nothing is decoded.</summary>
    internal static (IImageInfo? Info, string? Problem) Identify(string path)
    {
        try
        {
            if (new FileInfo(path).Length == 0) return (null, "empty, or not a regular file (a FIFO, device or socket)");
            var info = Image.Identify(path);
            return info is null ? (null, "not a recognised image format") : (info, null);
        }
        catch (Exception e) when (IsDecodeFailure(e))
        {
            return (null, e.Message);
        }
    }

    /// <summary>Null when the file passes the scan, else the reason: the header's size is bounded before anything is
    /// decoded.</summary>
    private static string? Probe(string path, ImageScan scan)
    {
        var (info, problem) = Identify(path);
        if (info is null) return problem;
        if (info.Width <= 0 || info.Height <= 0) return $"size {info.Width}×{info.Height}";
        if ((long)info.Width * info.Height > MaxPixels)
            return $"{info.Width}×{info.Height} pixels, more than the {MaxPixels:N0} an image may decode to";
        try
        {
            if (scan == ImageScan.Decode)
            {
                using var image = ImageDecoding.LoadRgb(path);
            }
            return null;
        }
        catch (Exception e) when (IsDecodeFailure(e))
        {
            return e.Message;
        }
    }

    /// <summary>Decoders fed malformed bytes throw more than ImageSharp's own exception types
    /// (index and argument errors from inside a codec), so every exception but running out of
    /// memory counts as a bad file here; a bad file must not take the process down.</summary>
    internal static bool IsDecodeFailure(Exception e) => e is not OutOfMemoryException;

    /// <summary>Short side to <paramref name="size"/> (long side truncated, as torchvision does),
    /// then the centre <paramref name="size"/>² crop with Python's round-half-even offsets.</summary>
    private static void ResizeAndCentreCrop<TPixel>(Image<TPixel> image, int size) where TPixel : unmanaged, IPixel<TPixel>
    {
        int width = image.Width, height = image.Height;
        if (width == size && height == size) return;
        var (resizedWidth, resizedHeight) = width <= height
            ? (size, (int)((long)size * height / width))
            : ((int)((long)size * width / height), size);
        int left = (int)Math.Round((resizedWidth - size) / 2.0, MidpointRounding.ToEven);
        int top = (int)Math.Round((resizedHeight - size) / 2.0, MidpointRounding.ToEven);
        image.Mutate(operations =>
        {
            if (resizedWidth != width || resizedHeight != height)
            {
                operations.Resize(new ResizeOptions
                {
                    Size = new Size(resizedWidth, resizedHeight),
                    Sampler = KnownResamplers.Triangle,
                    Mode = ResizeMode.Stretch,
                });
            }
            operations.Crop(new Rectangle(left, top, size, size));
        });
    }

    /// <summary>PIL's convert('L'): (299 R + 587 G + 114 B) / 1000 in 16-bit fixed point, rounded;
    /// a grey pixel keeps its value exactly.</summary>
    private static Image<L8> Luminance(Image<Rgb24> rgb)
    {
        var pixels = new Rgb24[rgb.Width * rgb.Height];
        rgb.CopyPixelDataTo(pixels);
        var grey = new byte[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            var p = pixels[i];
            grey[i] = (byte)((p.R * 19595 + p.G * 38470 + p.B * 7471 + 0x8000) >> 16);
        }
        return Image.LoadPixelData<L8>(grey, rgb.Width, rgb.Height);
    }

    private static void WriteRgb(Image<Rgb24> image, Span<float> destination)
    {
        var pixels = new Rgb24[image.Width * image.Height];
        image.CopyPixelDataTo(pixels);
        int plane = pixels.Length;
        for (int i = 0; i < plane; i++)
        {
            destination[i] = ImageDatasetExtensions.ByteToSigned(pixels[i].R);
            destination[plane + i] = ImageDatasetExtensions.ByteToSigned(pixels[i].G);
            destination[2 * plane + i] = ImageDatasetExtensions.ByteToSigned(pixels[i].B);
        }
    }

    private static void WriteGrey(Image<L8> image, Span<float> destination)
    {
        var pixels = new L8[image.Width * image.Height];
        image.CopyPixelDataTo(pixels);
        for (int i = 0; i < pixels.Length; i++) destination[i] = ImageDatasetExtensions.ByteToSigned(pixels[i].PackedValue);
    }
}
