using System.Buffers.Binary;
using System.IO.Compression;
using IlgpuDiffusion.Diffusion.Data;

namespace IlgpuDiffusion.Diffusion.Tests.Data;

public class IdxDatasetTests
{
    private const string RealData = "/usr/share/datasets/fashion-mnist";

    /// <summary>An IDX file of unsigned bytes: magic 0,0,8,dims, big-endian dimensions, data.</summary>
    internal static byte[] Idx(int[] dims, byte[] data)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        bytes[2] = 0x08;
        bytes[3] = (byte)dims.Length;
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    internal static void WriteFile(string path, byte[] bytes)
    {
        if (!path.EndsWith(".gz", StringComparison.Ordinal))
        {
            File.WriteAllBytes(path, bytes);
            return;
        }
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(bytes);
    }

    private static byte[] Pixels(int count, int size) =>
        Enumerable.Range(0, count * size * size).Select(i => (byte)(i * 7 % 256)).ToArray();

    [Theory]
    [InlineData("")]
    [InlineData(".gz")]
    public void Round_trip_of_images_and_labels(string suffix)
    {
        using var folder = new TempFolder();
        var pixels = Pixels(3, 4);
        WriteFile(folder.File("train-images-idx3-ubyte" + suffix), Idx([3, 4, 4], pixels));
        WriteFile(folder.File("train-labels-idx1-ubyte" + suffix), Idx([3], [7, 0, 9]));

        var dataset = IdxDataset.Open(folder.Path, withLabels: true);

        Assert.Equal((3, 1, 4), (dataset.Count, dataset.ImageChannels, dataset.ImageSize));
        Assert.Equal([7, 0, 9], Enumerable.Range(0, 3).Select(dataset.Label));
        var second = dataset.Get(1);
        Assert.Equal(16, second.Length);
        for (int i = 0; i < 16; i++) Assert.Equal(pixels[16 + i] / 255f * 2f - 1f, second[i]);
        Assert.Equal(-1f, dataset.Get(0)[0]); // pixel 0
        dataset.RequireShape(1, 4);
        Assert.Contains("im_size 28", Assert.Throws<InvalidDataException>(() => dataset.RequireShape(1, 28)).Message);
    }

    [Fact]
    public void Test_split_and_direct_file_path()
    {
        using var folder = new TempFolder();
        WriteFile(folder.File("train-images-idx3-ubyte"), Idx([2, 2, 2], new byte[8]));
        WriteFile(folder.File("t10k-images-idx3-ubyte.gz"), Idx([5, 2, 2], new byte[20]));

        Assert.Equal(5, IdxDataset.Open(folder.Path, IdxSplit.Test).Count);
        Assert.Equal(2, IdxDataset.Open(folder.File("train-images-idx3-ubyte")).Count);
    }

    public static TheoryData<string, byte[], string> CorruptFiles() => new()
    {
        { "truncated data", Idx([3, 4, 4], new byte[47])[..^1], "truncated" },
        { "truncated header", new byte[] { 0, 0, 8, 3, 0, 0 }, "truncated" },
        { "trailing bytes", [.. Idx([1, 2, 2], new byte[4]), 0], "after the" },
        { "labels magic", Idx([4], new byte[4]), "magic" },
        { "int32 elements", [0, 0, 0x0C, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0], "magic" },
        { "not square", Idx([1, 2, 3], new byte[6]), "not square" },
        { "zero dimension", Idx([0, 2, 2], []), "dimension 0 is 0" },
        { "huge dimensions", Idx([int.MaxValue, int.MaxValue, int.MaxValue], new byte[8]), "more than the file can hold" },
    };

    [Theory]
    [MemberData(nameof(CorruptFiles))]
    public void Corrupt_file_is_an_error_naming_the_file(string what, byte[] bytes, string expected)
    {
        using var folder = new TempFolder();
        var path = folder.File("train-images-idx3-ubyte");
        WriteFile(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(folder.Path));

        Assert.Contains(path, error.Message);
        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), $"{what}: {error.Message}");
    }

    [Fact]
    public void Corrupt_gzip_and_mismatched_labels_name_the_file()
    {
        using var folder = new TempFolder();
        var images = folder.File("train-images-idx3-ubyte.gz");
        WriteFile(images, Idx([2, 2, 2], new byte[8]));
        var gz = File.ReadAllBytes(images);
        gz[12] ^= 0xFF; // inside the deflate stream
        gz[13] ^= 0xFF;
        File.WriteAllBytes(images, gz);
        Assert.Contains(images, Assert.Throws<InvalidDataException>(() => IdxDataset.Open(folder.Path)).Message);

        WriteFile(images, Idx([2, 2, 2], new byte[8]));
        var labels = folder.File("train-labels-idx1-ubyte");
        WriteFile(labels, Idx([3], new byte[3]));
        var error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(folder.Path, withLabels: true));
        Assert.Contains(labels, error.Message);
        Assert.Contains("3 labels for the 2 images", error.Message);
    }

    [Theory]
    [InlineData(1, 10_000_000, "decompresses to more than the 800 bytes")]
    [InlineData(1_000_000, 1000, "more than the file can hold")]
    public void A_gzip_bomb_is_refused_after_reading_no_more_than_the_header_promises(int images, int zeros, string expected)
    {
        using var folder = new TempFolder();
        var path = folder.File("train-images-idx3-ubyte.gz");
        // 10 MB of zeros compress to about 10 KB; the header promises 1 image of 28×28 (or a million of them)
        WriteFile(path, [.. Idx([images, 28, 28], []), .. new byte[zeros]]);

        var error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(folder.Path));

        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Test_images_whose_count_disagrees_with_their_labels_are_refused_even_without_labels()
    {
        using var folder = new TempFolder();
        WriteFile(folder.File("t10k-images-idx3-ubyte"), Idx([2, 2, 2], new byte[8]));
        var labels = folder.File("t10k-labels-idx1-ubyte.gz");
        WriteFile(labels, Idx([3], new byte[3]));

        var error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(folder.File("t10k-images-idx3-ubyte")));

        Assert.Contains(labels, error.Message);
        Assert.Contains("3 labels for the 2 images", error.Message);
    }

    [Fact]
    public void Missing_data_says_where_to_get_it()
    {
        using var folder = new TempFolder();
        var missingFolder = folder.File("nowhere");
        var folderError = Assert.Throws<DirectoryNotFoundException>(() => IdxDataset.Open(missingFolder));
        Assert.Contains(missingFolder, folderError.Message);
        Assert.Contains("apt-get install dataset-fashion-mnist", folderError.Message);

        var fileError = Assert.Throws<FileNotFoundException>(() => IdxDataset.Open(folder.Path, IdxSplit.Test));
        Assert.Contains("t10k-images-idx3-ubyte", fileError.Message);
        Assert.Contains(folder.Path, fileError.Message);
        Assert.Contains("im_path", fileError.Message);
    }

    [SkippableFact]
    public void Real_fashion_mnist_when_installed()
    {
        Skip.IfNot(Directory.Exists(RealData), $"{RealData} absent (apt-get install dataset-fashion-mnist)");

        var train = IdxDataset.Open(RealData, withLabels: true);
        var test = IdxDataset.Open(RealData, IdxSplit.Test);

        Assert.Equal((60000, 1, 28), (train.Count, train.ImageChannels, train.ImageSize));
        Assert.Equal(10000, test.Count);
        Assert.Equal(9, train.Label(0)); // the first training item is an ankle boot
        var image = train.Get(0);
        Assert.All(image, v => Assert.InRange(v, -1f, 1f));
        Assert.Contains(image, v => v > 0.9f);
        Assert.Equal(-1f, image[0]); // black corner
    }
}
