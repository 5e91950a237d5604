using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors.Tests.IO;

public sealed class PthReaderTests : IDisposable
{
    private readonly IoTestFiles.ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Reads_state_dict_written_by_PyTorch()
    {
        // Expected names (= the manifest's vqvae_tiny parameters), shapes and value sums were taken
        // from the same file with Python's own pickle module and struct.
        var expected = File.ReadLines(IoTestFiles.Fixture("pth/vqvae_tiny_pth.expected.tsv"))
            .Where(line => !line.StartsWith('#'))
            .Select(line => line.Split('\t'))
            .Select(f => (Name: f[0], Shape: f[1].Split(',').Select(int.Parse).ToArray(),
                Sum: double.Parse(f[2], CultureInfo.InvariantCulture)))
            .ToList();

        var tensors = PthReader.Read(IoTestFiles.Fixture("pth/vqvae_tiny_pth.pth"));

        Assert.Equal(117, expected.Count);
        Assert.Equal(expected.Select(e => e.Name), tensors.Keys);
        foreach (var (name, shape, sum) in expected)
        {
            var tensor = tensors[name];
            Assert.Equal(shape, tensor.Shape);
            Assert.Equal(DType.Float32, tensor.DType);
            Assert.Equal(sum, tensor.Floats!.Sum(v => (double)v), 1e-9 * Math.Max(1, Math.Abs(sum)));
        }
    }

    [Fact]
    public void Honours_storage_offset_strides_and_converts_types()
    {
        var longs = new byte[8 * 8];
        for (int i = 0; i < 8; i++) BinaryPrimitives.WriteInt64LittleEndian(longs.AsSpan(8 * i), 10 * i);
        var doubles = new byte[2 * 8];
        BinaryPrimitives.WriteDoubleLittleEndian(doubles, 0.5);
        BinaryPrimitives.WriteDoubleLittleEndian(doubles.AsSpan(8), -1.25);

        var pickle = new PickleWriter().Proto()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Mark()
            // "view": a transposed 2×3 view starting at element 1 of an int64 storage of 8.
            .Str("view").Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Storage("LongStorage", "0", 8).Int(1).Ints(2, 3).Ints(1, 2).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce()
            // "param": an nn.Parameter around a float64 vector.
            .Str("param").Global("torch._utils", "_rebuild_parameter").Mark()
            .Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Storage("DoubleStorage", "1", 2).Int(0).Ints(2).Ints(1).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce()
            .True().Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce()
            .SetItems().Stop();
        var path = WriteTorchZip("strided.pth", pickle, new() { ["0"] = longs, ["1"] = doubles });

        var tensors = PthReader.Read(path);

        Assert.Equal([2, 3], tensors["view"].Shape);
        Assert.Equal([10, 30, 50, 20, 40, 60], tensors["view"].Ints!);
        Assert.Equal([0.5f, -1.25f], tensors["param"].Floats!);
    }

    [Theory]
    [InlineData(false, "os", "system")]
    [InlineData(true, "builtins", "eval")]
    [InlineData(true, "posix", "system")]
    public void Refuses_foreign_globals(bool stackGlobal, string module, string name)
    {
        var pickle = new PickleWriter().Proto();
        pickle = stackGlobal ? pickle.Str(module).Str(name).StackGlobal() : pickle.Global(module, name);
        var path = WriteTorchZip("evil.pth", pickle.Str("touch /tmp/pwned").Tuple1().Reduce().Stop(), []);

        var error = Assert.Throws<InvalidDataException>(() => PthReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains($"'{module}.{name}'", error.Message);
    }

    [Fact]
    public void Storage_shorter_than_its_persistent_id_is_an_error()
    {
        var pickle = new PickleWriter().Proto()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Str("w").Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Storage("FloatStorage", "0", 4).Int(0).Ints(4).Ints(1).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce().SetItem().Stop();
        var path = WriteTorchZip("short.pth", pickle, new() { ["0"] = new byte[12] });

        var error = Assert.Throws<InvalidDataException>(() => PthReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("archive/data/0", error.Message);
    }

    [Fact]
    public void Zero_stride_views_larger_than_their_storage_are_refused()
    {
        // 4096×4096 elements from a storage of one float: the audit's 623-byte file that took 790 MB
        var pickle = TorchZip.OneTensor("FloatStorage", 1, shape: [4096, 4096], strides: [0, 0]);
        var path = WriteTorchZip("broadcast.pth", pickle, new() { ["0"] = new byte[4] });

        var error = Assert.Throws<InvalidDataException>(() => PthReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("archive/data/0", error.Message);
        Assert.Contains("zero or overlapping strides", error.Message);
    }

    [Fact]
    public void Shape_products_that_overflow_are_an_error()
    {
        var pickle = TorchZip.OneTensor("FloatStorage", 1, shape: [65536, 65536, 65536], strides: [1, 1, 1]);
        var path = WriteTorchZip("overflow.pth", pickle, new() { ["0"] = new byte[4] });

        var error = Assert.Throws<InvalidDataException>(() => PthReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("spans more than", error.Message);
    }

    [Fact]
    public void Huge_string_length_is_an_error_not_an_allocation()
    {
        var pickle = new PickleWriter().Proto().Op(0x8d).Raw(BitConverter.GetBytes(long.MaxValue / 2)).Stop();
        var path = WriteTorchZip("longstring.pth", pickle, []);

        var error = Assert.Throws<InvalidDataException>(() => PthReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("pickle ends early", error.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Forged_zip_entries_name_the_file_and_entry(bool lzma)
    {
        var pickle = TorchZip.OneTensor("FloatStorage", 4, shape: [4], strides: [1]);
        var path = WriteTorchZip("forged.pth", pickle, new() { ["0"] = new byte[16] });
        // patch the central directory record of archive/data/0: its method (LZMA is 14) or its size (3 GB)
        var bytes = File.ReadAllBytes(path);
        var name = Encoding.ASCII.GetBytes("archive/data/0");
        int record = bytes.AsSpan().LastIndexOf(name) - 46;
        Assert.Equal(0x02014b50u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(record)));
        if (lzma) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(record + 10), 14);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(record + 24), 3_000_000_000);
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => PthReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("archive/data/0", error.Message);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        var path = _scratch.File("absent.pth");
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => PthReader.Read(path)).Message);
    }

    [Fact]
    public void Non_zip_file_is_an_error()
    {
        var path = _scratch.File("legacy.pth");
        File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a]);
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => PthReader.Read(path)).Message);
    }

    private string WriteTorchZip(string name, PickleWriter pickle, Dictionary<string, byte[]> storages)
    {
        var path = _scratch.File(name);
        TorchZip.Write(path, pickle, storages);
        return path;
    }
}
