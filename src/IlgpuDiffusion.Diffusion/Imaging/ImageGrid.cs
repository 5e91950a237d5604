using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Imaging;

/// <summary>Image grids as torchvision's make_grid + save_image write them: images left to right,
/// <c>imagesPerRow</c> to a row (make_grid's nrow), 2 black pixels of padding around and between,
/// values clamped to [0, 1] and stored as round(255 v).</summary>
public static class ImageGrid
{
    public const int Padding = 2;

    /// <param name="images">count×channels×height×width, row-major.</param>
    /// <param name="imagesPerRow">Images in one row of the grid (torchvision's nrow; the config's
    /// num_grid_rows).</param>
    /// <param name="fromMinusOneToOne">Map values from [−1, 1] to [0, 1] first, as model outputs need.</param>
    /// <param name="padding">Black pixels around and between images (0 with one image: the image alone).</param>
    /// <param name="scale">Each pixel drawn as scale×scale pixels (nearest neighbour), so that small images can be seen.</param>
    public static void Save(string path, float[] images, int count, int channels, int height, int width,
        int imagesPerRow, bool fromMinusOneToOne, int padding = Padding, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imagesPerRow);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "grids hold 1- or 3-channel images");
        }
        int plane = height * width;
        if (images.Length != (long)count * channels * plane)
        {
            throw new ArgumentException(
                $"{images.Length} values are not {count}×{channels}×{height}×{width} images", nameof(images));
        }

        int columns = Math.Min(imagesPerRow, count);
        int rows = (count + columns - 1) / columns;
        int gridWidth = columns * (width + padding) + padding;
        int gridHeight = rows * (height + padding) + padding;
        var grid = new byte[channels * gridWidth * gridHeight]; // interleaved, as the PNG stores it
        for (int n = 0; n < count; n++)
        {
            int top = n / columns * (height + padding) + padding;
            int left = n % columns * (width + padding) + padding;
            for (int c = 0; c < channels; c++)
            {
                for (int y = 0; y < height; y++)
                {
                    for (int x = 0; x < width; x++)
                    {
                        float v = images[(n * channels + c) * plane + y * width + x];
                        if (fromMinusOneToOne) v = (v + 1f) / 2f;
                        grid[((top + y) * gridWidth + left + x) * channels + c] = ToByte(v);
                    }
                }
            }
        }

        if (scale > 1)
        {
            grid = Enlarge(grid, channels, gridWidth, gridHeight, scale);
            (gridWidth, gridHeight) = (gridWidth * scale, gridHeight * scale);
        }
        using Image image = channels == 1
            ? Image.LoadPixelData<L8>(grid, gridWidth, gridHeight)
            : Image.LoadPixelData<Rgb24>(grid, gridWidth, gridHeight);
        AtomicFile.Write(path, stream => image.Save(stream, new PngEncoder()));
    }

    private static byte[] Enlarge(byte[] pixels, int channels, int width, int height, int scale)
    {
        int pixelBytes = channels, rowBytes = width * scale * pixelBytes;
        var large = new byte[(long)rowBytes * height * scale];
        for (int y = 0; y < height; y++)
        {
            var row = large.AsSpan(y * scale * rowBytes, rowBytes);
            for (int x = 0; x < width; x++)
            {
                var pixel = pixels.AsSpan((y * width + x) * pixelBytes, pixelBytes);
                for (int k = 0; k < scale; k++) pixel.CopyTo(row[((x * scale + k) * pixelBytes)..]);
            }
            for (int k = 1; k < scale; k++) row.CopyTo(large.AsSpan((y * scale + k) * rowBytes, rowBytes));
        }
        return large;
    }

    /// <summary>save_image's mul(255).add(0.5).clamp(0, 255); NaN becomes 0.</summary>
    private static byte ToByte(float v) => (byte)Math.Clamp(v * 255f + 0.5f, 0f, 255f);
}
