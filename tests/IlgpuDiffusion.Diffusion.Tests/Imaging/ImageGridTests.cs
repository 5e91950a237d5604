using IlgpuDiffusion.Diffusion.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Tests.Imaging;

public class ImageGridTests
{
    [Fact]
    public void Grey_grid_layout_padding_and_values()
    {
        using var folder = new TempFolder();
        var path = folder.File("grid.png");
        // Three 2×3 images, each constant: −1, 0, 2 (the last clamps to white).
        var images = new[] { -1f, 0f, 2f }.SelectMany(v => Enumerable.Repeat(v, 6)).ToArray();
        images[6 + 5] = 1f; // image 1, bottom-right pixel

        ImageGrid.Save(path, images, count: 3, channels: 1, height: 2, width: 3, imagesPerRow: 2, fromMinusOneToOne: true);

        using var grid = Image.Load<L8>(path);
        // make_grid: 2 columns, 2 rows of (3 + 2) × (2 + 2) cells plus the outer padding.
        Assert.Equal((12, 10), (grid.Width, grid.Height));
        Assert.Equal(0, grid[2, 2].PackedValue);    // image 0: −1 → 0
        Assert.Equal(128, grid[7, 2].PackedValue);  // image 1: 0 → 0.5 → round(127.5 + 0.5)
        Assert.Equal(255, grid[9, 3].PackedValue);  // image 1's 1
        Assert.Equal(255, grid[2, 6].PackedValue);  // image 2: clamped
        Assert.Equal(0, grid[5, 2].PackedValue);    // padding between columns
        Assert.Equal(0, grid[7, 6].PackedValue);    // the empty fourth cell
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void Rgb_grid_keeps_channels_apart()
    {
        using var folder = new TempFolder();
        var path = folder.File("sub/rgb.png");
        float[] image = [0.2f, 1f, 0f]; // one 1×1 image, channel planes R, G, B

        ImageGrid.Save(path, image, count: 1, channels: 3, height: 1, width: 1, imagesPerRow: 5, fromMinusOneToOne: false);

        using var grid = Image.Load<Rgb24>(path);
        Assert.Equal((5, 5), (grid.Width, grid.Height));
        Assert.Equal(new Rgb24(51, 255, 0), grid[2, 2]);
    }

    [Fact]
    public void Scale_draws_every_pixel_as_a_square()
    {
        using var folder = new TempFolder();
        string small = folder.File("small.png"), large = folder.File("large.png");
        float[] images = [0f, 0.25f, 0.5f, 1f, 0.75f, 0.1f]; // one 2×3 grey image
        ImageGrid.Save(small, images, count: 1, channels: 1, height: 2, width: 3, imagesPerRow: 1, fromMinusOneToOne: false);
        ImageGrid.Save(large, images, count: 1, channels: 1, height: 2, width: 3, imagesPerRow: 1, fromMinusOneToOne: false, scale: 3);

        using var s = Image.Load<L8>(small);
        using var l = Image.Load<L8>(large);
        Assert.Equal((3 * s.Width, 3 * s.Height), (l.Width, l.Height));
        for (int y = 0; y < l.Height; y++)
        {
            for (int x = 0; x < l.Width; x++) Assert.Equal(s[x / 3, y / 3], l[x, y]);
        }
    }

    [Fact]
    public void Wrong_sizes_are_refused()
    {
        using var folder = new TempFolder();
        Assert.Throws<ArgumentException>(() =>
            ImageGrid.Save(folder.File("x.png"), new float[5], 1, 1, 2, 3, 1, false));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageGrid.Save(folder.File("x.png"), new float[12], 1, 2, 2, 3, 1, false));
    }
}
