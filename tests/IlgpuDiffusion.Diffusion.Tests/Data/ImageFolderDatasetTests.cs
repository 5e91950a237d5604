using IlgpuDiffusion.Diffusion.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Tests.Data;

public class ImageFolderDatasetTests
{
    private static float Signed(double byteValue) => (float)(byteValue / 255 * 2 - 1);

    /// <summary>64 wide, 32 high: red = 4x, green = 100, blue = 8y. Linear ramps, so away from the
    /// borders a symmetric filter returns the ramp at the destination pixel's centre.</summary>
    private static void WriteGradient(string path)
    {
        using var image = new Image<Rgb24>(64, 32);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 64; x++) image[x, y] = new Rgb24((byte)(4 * x), 100, (byte)(8 * y));
        image.SaveAsPng(path);
    }

    [Fact]
    public void Rgb_resizes_short_side_and_centre_crops()
    {
        using var folder = new TempFolder();
        WriteGradient(folder.File("gradient.png"));

        var dataset = new ImageFolderDataset(folder.Path, imageChannels: 3, imageSize: 16, skipUnreadable: false);
        var image = dataset.Get(0);

        // 64×32 → 32×16 (factor 2), then columns 8..23. Resized pixel j's centre lies at source
        // 2j + 0.5, so red = 4(2j + 0.5) with j = x + 8, and blue = 8(2y + 0.5).
        Assert.Equal(3 * 16 * 16, image.Length);
        for (int y = 1; y < 15; y++)
        {
            for (int x = 0; x < 16; x++)
            {
                Assert.Equal(Signed(8 * (x + 8) + 2), image[y * 16 + x], 0.01f);
                Assert.Equal(Signed(100), image[256 + y * 16 + x], 0.01f);
                Assert.Equal(Signed(16 * y + 4), image[512 + y * 16 + x], 0.01f);
            }
        }
    }

    [Fact]
    public void Grey_images_are_used_as_they_are_and_colour_becomes_luminance()
    {
        using var folder = new TempFolder();
        var values = Enumerable.Range(0, 28 * 28).Select(i => (byte)(i % 256)).ToArray();
        Image.LoadPixelData<L8>(values, 28, 28).SaveAsPng(folder.File("a_grey.png"));
        using (var colour = new Image<Rgb24>(28, 28, new Rgb24(10, 20, 30))) colour.SaveAsBmp(folder.File("b_colour.bmp"));

        var dataset = new ImageFolderDataset(folder.Path, imageChannels: 1, imageSize: 28, skipUnreadable: false);

        Assert.Equal(2, dataset.Count);
        Assert.EndsWith("a_grey.png", dataset.PathOf(0));
        Assert.Equal(values.Select(v => v / 255f * 2f - 1f), dataset.Get(0));
        // PIL's L = 0.299 R + 0.587 G + 0.114 B = 18.15 → 18.
        Assert.All(dataset.Get(1), v => Assert.Equal(18 / 255f * 2f - 1f, v));
    }

    [Fact]
    public void Files_are_found_recursively_in_a_fixed_order()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("sub"));
        foreach (var name in new[] { "b.JPG", "sub/a.jpeg", "a.png", "notes.txt" })
        {
            using var image = new Image<Rgb24>(8, 8);
            if (name.EndsWith(".txt", StringComparison.Ordinal)) File.WriteAllText(folder.File(name), "x");
            else image.Save(folder.File(name));
        }

        var dataset = new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false);

        Assert.Equal(["a.png", "b.JPG", "sub/a.jpeg"],
            Enumerable.Range(0, dataset.Count).Select(i => Path.GetRelativePath(folder.Path, dataset.PathOf(i))));
    }

    [Fact]
    public void Corrupt_image_is_skipped_with_a_warning_or_fails_naming_it()
    {
        using var folder = new TempFolder();
        using (var good = new Image<Rgb24>(8, 8)) good.SaveAsPng(folder.File("good.png"));
        var bad = folder.File("bad.png");
        File.WriteAllText(bad, "not a png at all");

        var skipping = new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: true);
        Assert.Equal(1, skipping.Count);
        Assert.Contains(bad, Assert.Single(skipping.Warnings));

        var error = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false));
        Assert.Contains(bad, error.Message);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("corrupt zlib")]
    public void Broken_pixel_data_is_caught_by_a_decode_scan_or_when_read(string damage)
    {
        using var folder = new TempFolder();
        using (var image = new Image<Rgb24>(64, 64)) image.SaveAsPng(folder.File("a.png"));
        var broken = folder.File("broken.png");
        if (damage == "truncated")
        {
            using (var image = new Image<Rgb24>(64, 64))
            {
                for (int y = 0; y < 64; y++)
                    for (int x = 0; x < 64; x++) image[x, y] = new Rgb24((byte)(x * 37), (byte)(y * 11), (byte)(x ^ y));
                image.SaveAsPng(broken);
            }
            var bytes = File.ReadAllBytes(broken);
            File.WriteAllBytes(broken, bytes[..(bytes.Length / 2)]);
        }
        else // the first deflate block of reserved type 3, in chunks whose CRCs are right
            File.WriteAllBytes(broken, IndexedPng.Bytes(64, 64, 8, [0, 0, 0, 255, 255, 255], (x, y) => (x + y) % 2,
                zlib => [zlib[0], zlib[1], 0xFF, .. zlib[3..]]));

        var decoded = new ImageFolderDataset(folder.Path, 3, 64, skipUnreadable: true, ImageScan.Decode);
        Assert.Equal(1, decoded.Count);
        Assert.Contains(broken, Assert.Single(decoded.Warnings));

        var headerOnly = new ImageFolderDataset(folder.Path, 3, 64, skipUnreadable: true, ImageScan.Header);
        Assert.Equal(2, headerOnly.Count);
        Assert.Contains(broken, Assert.Throws<InvalidDataException>(() => headerOnly.Get(1)).Message);
    }

    [Theory]
    [InlineData(2, 3)]
    [InlineData(4, 15)]
    [InlineData(8, 200)]
    public void Palette_indices_beyond_the_palette_are_refused_naming_the_file(int bitDepth, int index)
    {
        using var folder = new TempFolder();
        using (var good = new Image<Rgb24>(8, 8)) good.SaveAsPng(folder.File("good.png"));
        var hostile = folder.File("hostile.png");
        // two colours, but one pixel per row uses an index past them (ImageSharp alone paints it the last colour)
        File.WriteAllBytes(hostile, IndexedPng.Bytes(8, 8, bitDepth, [10, 20, 30, 200, 210, 220], (x, y) => x == y ? index : x % 2));

        var error = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false));
        Assert.Contains(hostile, error.Message);
        Assert.Contains("8 of its 64 pixels have palette indices beyond its 2 colours", error.Message);
        Assert.Contains("skip_unreadable_images", error.Message);

        var skipping = new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: true);
        Assert.Equal(1, skipping.Count);
        Assert.Contains(hostile, Assert.Single(skipping.Warnings));

        var headerOnly = new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false, ImageScan.Header);
        Assert.Contains(hostile, Assert.Throws<InvalidDataException>(() => headerOnly.Get(1)).Message);
    }

    [Fact]
    public void Indexed_pngs_within_their_palette_decode_to_its_colours()
    {
        using var folder = new TempFolder();
        // black is a palette colour, and the first one the check would otherwise use for indices out of range
        byte[] palette = [0, 0, 0, 1, 0, 0, 90, 120, 250];
        File.WriteAllBytes(folder.File("indexed.png"), IndexedPng.Bytes(8, 8, 4, palette, (x, y) => (x + y) % 3));

        var image = new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false).Get(0);

        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(Signed(palette[3 * ((x + y) % 3) + c]), image[c * 64 + y * 8 + x], 1e-6f);
    }

    [SkippableFact]
    public void A_fifo_among_the_images_is_refused_without_opening_it()
    {
        using var folder = new TempFolder();
        using (var good = new Image<Rgb24>(8, 8)) good.SaveAsPng(folder.File("good.png"));
        var fifo = folder.File("pipe.png");
        NamedPipe.Make(fifo);

        // opening the pipe would block forever: the scan must finish, and quickly
        var scan = Task.Run(() => new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: true));
        Assert.True(scan.Wait(TimeSpan.FromSeconds(30)), "the scan hung on a FIFO");
        Assert.Equal(1, scan.Result.Count);
        Assert.Contains(fifo, Assert.Single(scan.Result.Warnings));
        Assert.Contains("not a regular file", scan.Result.Warnings[0]);
    }

    [Fact]
    public void Symbolic_links_to_folders_are_followed_once_and_loops_add_nothing()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("cats"));
        using (var image = new Image<Rgb24>(8, 8)) image.SaveAsPng(folder.File("cats/a.png"));
        Directory.CreateSymbolicLink(folder.File("cats/loop"), folder.Path);
        Directory.CreateSymbolicLink(folder.File("also-cats"), folder.File("cats"));

        var dataset = new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false);

        Assert.Equal(1, dataset.Count);
    }

    [Fact]
    public void Dimensions_beyond_the_pixel_limit_are_refused_before_decoding()
    {
        using var folder = new TempFolder();
        using (var good = new Image<Rgb24>(8, 8)) good.SaveAsPng(folder.File("good.png"));
        var bomb = folder.File("bomb.bmp");
        using (var tiny = new Image<Rgb24>(1, 1)) tiny.SaveAsBmp(bomb);
        // a 58-byte file whose header claims 30000×30000 pixels (2.7 GB decoded)
        var bytes = File.ReadAllBytes(bomb);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(18), 30000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(22), 30000);
        File.WriteAllBytes(bomb, bytes);

        var error = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(folder.Path, 3, 8, skipUnreadable: false));

        Assert.Contains(bomb, error.Message);
        Assert.Contains("30000×30000", error.Message);
        Assert.Contains("skip_unreadable_images", error.Message);
    }

    [Fact]
    public void Missing_or_empty_folder_is_an_error_naming_it()
    {
        using var folder = new TempFolder();
        Assert.Contains(folder.File("none"),
            Assert.Throws<DirectoryNotFoundException>(() => new ImageFolderDataset(folder.File("none"), 3, 8, false)).Message);
        Assert.Contains(folder.Path,
            Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(folder.Path, 3, 8, false)).Message);
    }
}
