using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace IlgpuDiffusion.TestSupport;

/// <summary>PyTorch `.pth` files written by hand (torch.save's zip layout), for readers fed forged ones.</summary>
public static class TorchZip
{
    /// <summary>Writes the zip of <paramref name="pickle"/> and the storages by key (archive/data/KEY), uncompressed.</summary>
    public static void Write(string path, PickleWriter pickle, Dictionary<string, byte[]> storages)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        WriteEntry(zip, "archive/data.pkl", pickle.ToArray());
        WriteEntry(zip, "archive/version", "3\n"u8.ToArray());
        foreach (var (key, bytes) in storages) WriteEntry(zip, "archive/data/" + key, bytes);

        static void WriteEntry(ZipArchive zip, string entryName, byte[] bytes)
        {
            using var stream = zip.CreateEntry(entryName, CompressionLevel.NoCompression).Open();
            stream.Write(bytes);
        }
    }

    /// <summary>A state dict {"w": a view of storage "0"} with the given layout.</summary>
    public static PickleWriter OneTensor(string storageType, int storageElements, int[] shape, int[] strides) =>
        new PickleWriter().Proto()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Str("w").Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Storage(storageType, "0", storageElements).Int(0).Ints(shape).Ints(strides).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce().SetItem().Stop();
}

/// <summary>Emits pickle opcodes the way torch.save does (protocol 2), for hand-built files.</summary>
public sealed class PickleWriter
{
    private readonly MemoryStream _bytes = new();

    public PickleWriter Proto() => Op(0x80).Op(2);
    public PickleWriter Mark() => Op((byte)'(');
    public PickleWriter EmptyTuple() => Op((byte)')');
    public PickleWriter Tuple() => Op((byte)'t');
    public PickleWriter Tuple1() => Op(0x85);
    public PickleWriter Reduce() => Op((byte)'R');
    public PickleWriter SetItem() => Op((byte)'s');
    public PickleWriter SetItems() => Op((byte)'u');
    public PickleWriter True() => Op(0x88);
    public PickleWriter False() => Op(0x89);
    public PickleWriter StackGlobal() => Op(0x93);
    public PickleWriter Stop() => Op((byte)'.');

    public PickleWriter Global(string module, string name) =>
        Op((byte)'c').Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    public PickleWriter Str(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        var length = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
        return Op((byte)'X').Raw(length).Raw(utf8);
    }

    public PickleWriter Int(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        return Op((byte)'J').Raw(bytes);
    }

    public PickleWriter Ints(params int[] values)
    {
        Mark();
        foreach (int value in values) Int(value);
        return Tuple();
    }

    // A persistent storage id ('storage', torch.<type>, key, 'cpu', numel), loaded by BINPERSID.
    public PickleWriter Storage(string storageType, string key, int elementCount) =>
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(elementCount).Tuple()
            .Op((byte)'Q');

    public byte[] ToArray() => _bytes.ToArray();

    public PickleWriter Op(byte opcode) => Raw([opcode]);

    public PickleWriter Raw(byte[] bytes)
    {
        _bytes.Write(bytes);
        return this;
    }
}
