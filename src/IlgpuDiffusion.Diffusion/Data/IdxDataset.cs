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
    /// names (<c>train-…</c> or <c>t10k-…</c>, raw or <c>.gz</c>), or an images file itself.</summary>
    public static IdxDataset Open(string path, IdxSplit split = IdxSplit.Train, bool withLabels = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            return FromFiles(path, withLabels ? FindSplitFile(Path.GetDirectoryName(Path.GetFullPath(path))!, split, "labels-idx1") : null);
        }
        if (!Directory.Exists(path))
        {
            throw new DirectoryNotFoundException($"IDX data folder not found: {path}; {HowToGetData}");
        }
        return FromFiles(FindSplitFile(path, split, "images-idx3"),
            withLabels ? FindSplitFile(path, split, "labels-idx1") : null);
    }

    public static IdxDataset FromFiles(string imagesPath, string? labelsPath = null)
    {
        var file = ReadMaybeGzip(imagesPath);
        var dims = ReadHeader(file, imagesPath, expectedDims: 3);
        if (dims[1] != dims[2])
        {
            throw new InvalidDataException($"{imagesPath}: images are {dims[1]}×{dims[2]}, not square");
        }
        byte[]? labels = null;
        if (labelsPath is not null)
        {
            var labelFile = ReadMaybeGzip(labelsPath);
            var labelDims = ReadHeader(labelFile, labelsPath, expectedDims: 1);
            if (labelDims[0] != dims[0])
            {
                throw new InvalidDataException(
                    $"{labelsPath}: {labelDims[0]} labels for the {dims[0]} images of {imagesPath}");
            }
            labels = labelFile[HeaderLength(1)..];
        }
        return new IdxDataset(imagesPath, file, HeaderLength(3), dims[0], dims[1], labels);
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

    private static string FindSplitFile(string folder, IdxSplit split, string kind)
    {
        string baseName = $"{(split == IdxSplit.Train ? "train" : "t10k")}-{kind}-ubyte";
        foreach (var name in new[] { baseName, baseName + ".gz" })
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(
            $"no {baseName} or {baseName}.gz in {folder}; {HowToGetData}", Path.Combine(folder, baseName));
    }

    private static byte[] ReadMaybeGzip(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"IDX file not found: {path}; {HowToGetData}", path, e);
        }
        if (bytes is not [0x1F, 0x8B, ..]) return bytes;
        try
        {
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var plain = new MemoryStream();
            gzip.CopyTo(plain);
            return plain.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: corrupt gzip data: {e.Message}", e);
        }
    }

    private static int HeaderLength(int dims) => 4 + 4 * dims;

    /// <summary>Checks the magic number (0, 0, type, dimension count), the dimensions and that the
    /// file holds exactly the data they promise; returns the dimensions.</summary>
    private static int[] ReadHeader(byte[] file, string path, int expectedDims)
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
        // Int128: three int dimensions cannot overflow it, whatever a corrupt header says.
        Int128 dataLength = 1;
        for (int d = 0; d < expectedDims; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(4 + 4 * d));
            if (dims[d] <= 0) throw new InvalidDataException($"{path}: dimension {d} is {dims[d]}");
            dataLength *= dims[d];
        }
        dataLength += HeaderLength(expectedDims);
        if (file.Length != dataLength)
        {
            var shape = string.Join(", ", dims);
            throw new InvalidDataException(file.Length < dataLength
                ? $"{path}: truncated: {file.Length} bytes, the header [{shape}] promises {dataLength}"
                : $"{path}: {file.Length - dataLength} bytes after the {dataLength} that the header [{shape}] promises");
        }
        return dims;
    }
}
