using System.Buffers.Binary;
using System.Text;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly IoTestFiles.ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Round_trip_keeps_order_values_shapes_and_metadata()
    {
        var path = _scratch.File("round.safetensors");
        var tensors = new KeyValuePair<string, HostTensor>[]
        {
            new("weight", HostTensor.FromFloats([2, 3], [1f, -2.5f, float.NaN, float.MaxValue, 0f, -0f])),
            new("indices", HostTensor.FromInts([4], [0, -1, int.MaxValue, int.MinValue])),
            new("empty", HostTensor.FromFloats([0, 3], [])),
            new("scalar", HostTensor.FromFloats([], [3.25f])),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["step"] = "12" };

        SafeTensors.Write(path, tensors, metadata);
        var read = SafeTensors.Read(path);

        Assert.Equal(tensors.Select(t => t.Key), read.Keys);
        foreach (var (name, expected) in tensors)
        {
            var actual = read[name];
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.Equal(expected.DType, actual.DType);
            Assert.Equal(expected.ElementCount, actual.ElementCount);
            if (expected.Floats is not null)
            {
                // Bitwise, so NaN and -0 count too.
                Assert.Equal(expected.Floats.Select(BitConverter.SingleToInt32Bits),
                    actual.Floats!.Select(BitConverter.SingleToInt32Bits));
            }
            else
            {
                Assert.Equal(expected.Ints, actual.Ints);
            }
        }
        Assert.Equal(metadata, SafeTensors.ReadMetadata(path));
        // The header is padded so the data starts 8-byte aligned.
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path).AsSpan(0, 8));
        Assert.Equal(0ul, headerLength % 8);
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void File_without_metadata_has_empty_metadata()
    {
        var path = _scratch.File("plain.safetensors");
        SafeTensors.Write(path, [new("x", HostTensor.FromInts([1], [7]))]);
        Assert.Empty(SafeTensors.ReadMetadata(path));
    }

    [Fact]
    public void Reads_parity_fixture()
    {
        var tensors = SafeTensors.Read(IoTestFiles.Fixture("parity/linear.safetensors"));

        Assert.Equal([3, 10], tensors["x"].Shape);
        Assert.Equal([7, 10], tensors["w"].Shape);
        Assert.All(tensors.Values, t => Assert.Equal(DType.Float32, t.DType));
        Assert.All(tensors.Values, t => Assert.All(t.Floats!, v => Assert.True(float.IsFinite(v))));
    }

    [Fact]
    public void Converts_other_dtypes_to_float32_and_int32()
    {
        var data = new byte[8 + 2 + 2 + 8 + 4];
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(0), 1.5);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(8), 0x3C00); // f16 1.0
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(10), 0xC040); // bf16 -3.0
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(12), -42);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(20), 9);
        var path = WriteRaw("types.safetensors", """
            {"d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
             "h": {"dtype": "F16", "shape": [1], "data_offsets": [8, 10]},
             "b": {"dtype": "BF16", "shape": [1], "data_offsets": [10, 12]},
             "l": {"dtype": "I64", "shape": [1], "data_offsets": [12, 20]},
             "i": {"dtype": "I32", "shape": [1], "data_offsets": [20, 24]}}
            """, data);

        var read = SafeTensors.Read(path);

        Assert.Equal([1.5f], read["d"].Floats!);
        Assert.Equal([1f], read["h"].Floats!);
        Assert.Equal([-3f], read["b"].Floats!);
        Assert.Equal([-42], read["l"].Ints!);
        Assert.Equal([9], read["i"].Ints!);
    }

    [Fact]
    public void Int64_out_of_int32_range_is_an_error()
    {
        var data = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(data, 1L << 40);
        var path = WriteRaw("big.safetensors", """{"steps": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}}""", data);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("'steps'", error.Message);
    }

    [Fact]
    public void Truncated_files_name_the_file()
    {
        var path = _scratch.File("truncated.safetensors");
        SafeTensors.Write(path, [new("weight", HostTensor.FromFloats([4], [1, 2, 3, 4]))]);
        var whole = File.ReadAllBytes(path);

        File.WriteAllBytes(path, whole[..5]);
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);

        // Header intact, data cut short: the offsets now reach past the end.
        File.WriteAllBytes(path, whole[..^4]);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("'weight'", error.Message);
        Assert.Contains("data_offsets", error.Message);
    }

    [Fact]
    public void Header_length_beyond_the_file_is_an_error()
    {
        var path = _scratch.File("long-header.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("header length 1000", error.Message);
    }

    [Theory]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]""", "not valid JSON")]
    [InlineData("""{"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}""", "'w': unsupported dtype 'Q4'")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}""", "'w': data_offsets [0, 8] span 8 bytes")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}""", "'w': data_offsets [8, 0] out of range")]
    [InlineData("""{"w": {"dtype": "F32", "data_offsets": [0, 8]}}""", "'w': field 'shape' is missing")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}}""", "'w': field 'shape' holds 2.5")]
    public void Corrupt_header_errors_name_the_file_and_entry(string header, string expectedMessage)
    {
        var path = WriteRaw("corrupt.safetensors", header, new byte[8]);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expectedMessage, error.Message);
    }

    [Theory]
    [InlineData("""{"a": {"dtype":"F32", "shape":[2], "data_offsets":[0, 8]}, "a": {"dtype":"F32", "shape":[2], "data_offsets":[8, 16]}}""",
        16, "'a': the name appears twice")]
    [InlineData("""{"a": {"dtype":"F32", "shape":[2], "data_offsets":[0, 8]}, "b": {"dtype":"F32", "shape":[2], "data_offsets":[4, 12]}}""",
        12, "'b': data_offsets [4, 12] overlap those of 'a'")]
    [InlineData("""{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}""", 8, "cover 4 of the 8 data bytes")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8, "leave bytes [0, 4) unused")]
    [InlineData("""{"a": {"dtype": "F64", "shape": [65536, 65536, 65536], "data_offsets": [0, 8]}}""", 8, "spans more than")]
    public void Forged_layouts_name_the_file_and_tensor(string header, int dataBytes, string expectedMessage)
    {
        var path = WriteRaw("forged.safetensors", header, new byte[dataBytes]);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expectedMessage, error.Message);
    }

    [Fact]
    public void A_sparse_file_declaring_a_tensor_beyond_the_limit_is_refused_before_allocating()
    {
        const long bytes = 3L << 30; // 3 GiB of F32, every offset within the (sparse) file
        var header = $$$"""{"w": {"dtype": "F32", "shape": [{{{bytes / 4}}}], "data_offsets": [0, {{{bytes}}}]}}""";
        var path = WriteRaw("sparse.safetensors", header, []);
        using (var file = new FileStream(path, FileMode.Open)) file.SetLength(file.Length + bytes);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("'w'", error.Message);
        Assert.Contains("spans more than", error.Message);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        var path = _scratch.File("absent.safetensors");
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => SafeTensors.Read(path)).Message);
    }

    [Fact]
    public void Failed_write_leaves_the_previous_file_intact()
    {
        var path = _scratch.File("checkpoint.safetensors");
        SafeTensors.Write(path, [new("w", HostTensor.FromFloats([2], [1, 2]))]);
        var before = File.ReadAllBytes(path);

        Assert.Throws<IOException>(() => SafeTensors.Write(path, FailingAfterFirst()));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".tmp"));

        static IEnumerable<KeyValuePair<string, HostTensor>> FailingAfterFirst()
        {
            yield return new("w", HostTensor.FromFloats([3], [5, 6, 7]));
            throw new IOException("simulated failure while producing tensors");
        }
    }

    [Fact]
    public void Repeated_names_are_refused()
    {
        var path = _scratch.File("repeated.safetensors");
        var tensor = HostTensor.FromInts([1], [1]);
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, [new("a", tensor), new("a", tensor)]));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Host_tensor_checks_data_length_against_shape()
    {
        var error = Assert.Throws<ArgumentException>(() => HostTensor.FromFloats([2, 3], new float[5]));
        Assert.Contains("[2, 3]", error.Message);
        Assert.Throws<ArgumentException>(() => HostTensor.FromInts([-1], []));
        Assert.Equal(1, HostTensor.FromInts([], [4]).ElementCount);
    }

    private string WriteRaw(string name, string header, byte[] data)
    {
        var path = _scratch.File(name);
        var headerBytes = Encoding.UTF8.GetBytes(header);
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
        file.Write(length);
        file.Write(headerBytes);
        file.Write(data);
        return path;
    }
}
