using System.Buffers.Binary;
using System.IO.Compression;

namespace IlgpuDiffusion.Diffusion.Data;

public enum IdxSplit { Train, Test }

/// <summary>MNIST-style IDX files (MNIST, Fashion-MNIST): an images file of unsigned bytes N×S×S and,
/// optionally, a labels file of N bytes; each raw or gzip-compressed (recognised by its first bytes,
/// not its name). The whole images file is held in memory as bytes (47 MB for a 60 000-image train
/// split) and converted per item: v / 255 · 2 − 1, as ToTensor then 2x − 1 does.</summary>
public sealed class IdxDataset : IImageDataset
{
    public const string HowToGetData =
        "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist; files under " +
        "/usr/share/datasets/fashion-mnist) or point dataset_params.im_path at a folder holding " +
        "train-images-idx3-ubyte[.gz] / t10k-images-idx3-ubyte[.gz]";

    private const byte UnsignedByteType = 0x08;
    private static readonly float[] SignedByByte =
        Enumerable.Range(0, 256).Select(v => ImageDatasetExtensions.ByteToSigned((byte)v)).ToArray();

    private readonly byte[] _file;
    private readonly int _pixelStart;
    private readonly byte[]? _labels;

    private IdxDataset(string imagesPath, byte[] file, int pixelStart, int count, int size, byte[]? labels)
    {
        Name = $"IDX {imagesPath}";
        ImagesPath = imagesPath;
        _file = file;
        _pixelStart = pixelStart;
        Count = count;
        ImageSize = size;
        _labels = labels;
    }

    public string Name { get; }
    public string ImagesPath { get; }
    public int Count { get; }
    public int ImageChannels => 1;
    public int ImageSize { get; }
    public bool HasLabels => _labels is not null;

    /// <summary>Opens <paramref name="path"/>: a folder holding the split's files under their usual
    /// names (<c>train-…</c> or <c>t10k-…</c>, raw or <c>.gz</c>), or an images file itself. Without
    /// <paramref name="withLabels"/>, a labels file of the split beside the images must still agree on the count
    /// (a mismatch means the images file is not the one the labels describe).</summary>
    public static IdxDataset Open(string path, IdxSplit split = IdxSplit.Train, bool withLabels = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        string folder, images;
        if (File.Exists(path))
        {
            folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            images = path;
            if (Path.GetFileName(path).StartsWith("t10k-", StringComparison.Ordinal)) split = IdxSplit.Test;
        }
        else if (Directory.Exists(path))
        {
            folder = path;
            images = FindSplitFile(path, split, "images-idx3");
        }
        else
        {
            throw new DirectoryNotFoundException($"IDX data folder not found: {path}; {HowToGetData}");
        }
        if (withLabels) return FromFiles(images, FindSplitFile(folder, split, "labels-idx1"));
        var dataset = FromFiles(images);
        if (TryFindSplitFile(folder, split, "labels-idx1") is { } labels && DeclaredCount(labels, 1) is { } count)
            RequireSameCount(labels, count, images, dataset.Count);
        return dataset;
    }

    public static IdxDataset FromFiles(string imagesPath, string? labelsPath = null)
    {
        var (file, dims) = Read(imagesPath, expectedDims: 3);
        if (dims[1] != dims[2])
        {
            throw new InvalidDataException($"{imagesPath}: images are {dims[1]}×{dims[2]}, not square");
        }
        byte[]? labels = null;
        if (labelsPath is not null)
        {
            var (labelFile, labelDims) = Read(labelsPath, expectedDims: 1);
            RequireSameCount(labelsPath, labelDims[0], imagesPath, dims[0]);
            labels = labelFile[HeaderLength(1)..];
        }
        return new IdxDataset(imagesPath, file, HeaderLength(3), dims[0], dims[1], labels);
    }

    private static void RequireSameCount(string labelsPath, int labels, string imagesPath, int images)
    {
        if (labels != images)
        {
            throw new InvalidDataException($"{labelsPath}: {labels} labels for the {images} images of {imagesPath}");
        }
    }

    public void CopyTo(int index, Span<float> destination)
    {
        this.CheckIndex(index);
        this.CheckDestination(destination);
        var pixels = _file.AsSpan(_pixelStart + index * destination.Length, destination.Length);
        for (int i = 0; i < pixels.Length; i++) destination[i] = SignedByByte[pixels[i]];
    }

    public int Label(int index)
    {
        if (_labels is null) throw new InvalidOperationException($"{Name} was opened without labels");
        this.CheckIndex(index);
        return _labels[index];
    }

    private static string FindSplitFile(string folder, IdxSplit split, string kind) =>
        TryFindSplitFile(folder, split, kind) ?? throw new FileNotFoundException(
            $"no {BaseName(split, kind)} or {BaseName(split, kind)}.gz in {folder}; {HowToGetData}",
            Path.Combine(folder, BaseName(split, kind)));

    private static string? TryFindSplitFile(string folder, IdxSplit split, string kind) =>
        new[] { BaseName(split, kind), BaseName(split, kind) + ".gz" }.Select(name => Path.Combine(folder, name))
            .FirstOrDefault(File.Exists);

    private static string BaseName(IdxSplit split, string kind) => $"{(split == IdxSplit.Train ? "train" : "t10k")}-{kind}-ubyte";

    /// <summary>Reads an IDX file, raw or gzip-compressed: the header first, then exactly the bytes its dimensions
    /// promise, so a forged header or a gzip bomb is refused before it is read into memory.</summary>
    private static (byte[] File, int[] Dims) Read(string path, int expectedDims)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"IDX file not found: {path}; {HowToGetData}", path, e);
        }
        using (file)
        {
            bool gzip = file.ReadByte() == 0x1F && file.ReadByte() == 0x8B;
            file.Position = 0;
            using Stream data = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
            try
            {
                var header = new byte[HeaderLength(expectedDims)];
                int headerRead = data.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
                var dims = ReadHeader(header.AsSpan(0, headerRead), path, expectedDims);
                long length = Length(dims);
                // deflate expands at most about 1032 times
                if (length > Array.MaxLength || (gzip && length > file.Length * 1032))
                {
                    throw new InvalidDataException(
                        $"{path}: the header [{string.Join(", ", dims)}] promises {length} bytes, more than the file can hold");
                }
                if (!gzip && file.Length != length)
                {
                    throw new InvalidDataException(file.Length < length
                        ? $"{path}: truncated: {file.Length} bytes, the header [{string.Join(", ", dims)}] promises {length}"
                        : $"{path}: {file.Length - length} bytes after the {length} that the header [{string.Join(", ", dims)}] promises");
                }
                var bytes = new byte[length];
                header.CopyTo(bytes, 0);
                int read = data.ReadAtLeast(bytes.AsSpan(header.Length), bytes.Length - header.Length, throwOnEndOfStream: false);
                if (read < bytes.Length - header.Length)
                {
                    throw new InvalidDataException($"{path}: truncated: {header.Length + read} bytes after decompression, "
                        + $"the header [{string.Join(", ", dims)}] promises {length}");
                }
                if (gzip && data.ReadByte() >= 0)
                {
                    throw new InvalidDataException(
                        $"{path}: decompresses to more than the {length} bytes that the header [{string.Join(", ", dims)}] promises");
                }
                return (bytes, dims);
            }
            catch (InvalidDataException e) when (gzip && !e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}: corrupt gzip data: {e.Message}", e);
            }
        }
    }

    /// <summary>The number of items an IDX file's header declares (null when the file is absent), read without
    /// reading the rest of the file.</summary>
    private static int? DeclaredCount(string path, int expectedDims)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            bool gzip = file.ReadByte() == 0x1F && file.ReadByte() == 0x8B;
            file.Position = 0;
            using Stream data = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
            var header = new byte[HeaderLength(expectedDims)];
            return ReadHeader(header.AsSpan(0, data.ReadAtLeast(header, header.Length, throwOnEndOfStream: false)), path, expectedDims)[0];
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static long Length(int[] dims)
    {
        // three positive int dimensions cannot overflow 128 bits; the product is compared with the limit there
        Int128 length = HeaderLength(dims.Length);
        Int128 items = 1;
        foreach (int d in dims) items *= d;
        length += items;
        return length > long.MaxValue ? long.MaxValue : (long)length;
    }

    private static int HeaderLength(int dims) => 4 + 4 * dims;

    /// <summary>Checks the magic number (0, 0, type, dimension count) and the dimensions of a header;
    /// returns the dimensions.</summary>
    private static int[] ReadHeader(ReadOnlySpan<byte> file, string path, int expectedDims)
    {
        if (file.Length >= 4 && (file[0] != 0 || file[1] != 0 || file[2] != UnsignedByteType || file[3] != expectedDims))
        {
            throw new InvalidDataException(
                $"{path}: bad IDX magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(file):X8}, expected " +
                $"0x{UnsignedByteType << 8 | expectedDims:X8} (unsigned bytes, {expectedDims} dimension(s)) — " +
                "not an IDX file of this kind");
        }
        if (file.Length < HeaderLength(expectedDims))
        {
            throw new InvalidDataException(
                $"{path}: truncated: {file.Length} bytes, fewer than the {HeaderLength(expectedDims)}-byte IDX header");
        }
        var dims = new int[expectedDims];
        for (int d = 0; d < expectedDims; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(file[(4 + 4 * d)..]);
            if (dims[d] <= 0) throw new InvalidDataException($"{path}: dimension {d} is {dims[d]}");
        }
        return dims;
    }
}
