using System.Buffers.Binary;
using System.Text;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors.Tests.IO;

public sealed class OnnxReaderTests : IDisposable
{
    private readonly IoTestFiles.ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // Fetched by the test project's PackageDownload item: ResNet18 without its classifier, exported by CNTK 2.6
    // (ONNX opset 8), weights in float_data under opaque names, asymmetric pads in places.
    private static string ResNet18Path => Path.Combine(IoTestFiles.NuGetPackageRoot,
        "microsoft.ml.dnnimagefeaturizer.resnet18", "0.23.1", "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    [Fact]
    public void Reads_ResNet18()
    {
        var graph = OnnxReader.Read(ResNet18Path);

        Assert.Equal("CNTK", graph.ProducerName);
        Assert.Equal(8, graph.OpsetVersion);
        var opCounts = graph.Nodes.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(new Dictionary<string, int>
        {
            ["Conv"] = 22, ["BatchNormalization"] = 22, ["Relu"] = 19, ["Add"] = 9, ["MaxPool"] = 1, ["AveragePool"] = 1,
        }, opCounts);
        Assert.Equal(110, graph.Initializers.Count);
        Assert.Equal(15_908_800, graph.Initializers.Values.Sum(t => t.ElementCount));
        Assert.All(graph.Initializers.Values, t => Assert.True(t.Floats!.All(float.IsFinite)));

        var input = Assert.Single(graph.Inputs);
        Assert.Equal(("Input247", OnnxDataType.Float), (input.Name, input.ElementType));
        Assert.Equal<long?>([1, 3, 224, 224], input.Shape);
        Assert.Equal<long?>([1, 512, 1, 1], Assert.Single(graph.Outputs).Shape);

        var stem = graph.Nodes[0];
        Assert.Equal("Conv", stem.OpType);
        Assert.Equal([64, 3, 7, 7], graph.Initializers[stem.Inputs[1]].Shape);
        Assert.Equal([3L, 3, 2, 2], stem.Ints("pads"));
        Assert.Equal([2L, 2], stem.Ints("strides"));
        Assert.Equal(1, stem.Int("group"));

        Assert.All(graph.Nodes.Where(n => n.OpType == "BatchNormalization"), bn =>
        {
            Assert.Equal(1e-5f, bn.Float("epsilon"), 1e-9f);
            Assert.All(bn.Inputs.Skip(1), name => Assert.True(graph.Initializers.ContainsKey(name)));
        });
        Assert.Equal([1L, 1, 0, 0], graph.Nodes.Single(n => n.OpType == "MaxPool").Ints("pads"));
    }

    [Fact]
    public void Reads_raw_data_unpacked_floats_and_attributes()
    {
        var raw = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(raw, -3);
        BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(8), 5);
        var node = new ProtoWriter()
            .String(1, "x").String(1, "shape").String(2, "y").String(3, "reshape0").String(4, "Reshape")
            .Message(5, new ProtoWriter().String(1, "alpha").Float(2, 0.25f))
            .Message(5, new ProtoWriter().String(1, "axes").Varint(8, 1).Varint(8, 2)) // unpacked ints
            .Message(5, new ProtoWriter().String(1, "mode").String(4, "constant"));
        var rawInitializer = new ProtoWriter()
            .Varint(1, 2).Varint(2, (int)OnnxDataType.Int64).String(8, "shape").Bytes(9, raw);
        var floatInitializer = new ProtoWriter()
            .Varint(1, 1).Varint(1, 2).Varint(2, (int)OnnxDataType.Float).Float(4, 1.5f).Float(4, -2f).String(8, "w");
        var model = new ProtoWriter()
            .Varint(1, 7)
            .Message(7, new ProtoWriter().Message(1, node).String(2, "tiny")
                .Message(5, rawInitializer).Message(5, floatInitializer))
            .Message(8, new ProtoWriter().Varint(2, 13));
        var path = _scratch.File("tiny.onnx");
        File.WriteAllBytes(path, model.ToArray());

        var graph = OnnxReader.Read(path);

        Assert.Equal(13, graph.OpsetVersion);
        var reshape = Assert.Single(graph.Nodes);
        Assert.Equal(("reshape0", "Reshape"), (reshape.Name, reshape.OpType));
        Assert.Equal(["x", "shape"], reshape.Inputs);
        Assert.Equal(["y"], reshape.Outputs);
        Assert.Equal(0.25f, reshape.Float("alpha"));
        Assert.Equal([1L, 2], reshape.Ints("axes"));
        Assert.Equal("constant", reshape.String("mode"));
        Assert.Equal(4, reshape.Int("missing", 4));
        Assert.Contains("'missing'", Assert.Throws<InvalidDataException>(() => reshape.Ints("missing")).Message);
        Assert.Equal(["shape", "w"], graph.Initializers.Keys);
        Assert.Equal([-3, 5], graph.Initializers["shape"].Ints!);
        Assert.Equal([1, 2], graph.Initializers["w"].Shape);
        Assert.Equal([1.5f, -2f], graph.Initializers["w"].Floats!);

        // Cut inside the graph: the error names the file and the message being read.
        File.WriteAllBytes(path, model.ToArray()[..^5]);
        var error = Assert.Throws<InvalidDataException>(() => OnnxReader.Read(path));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Initializer_with_wrong_value_count_is_an_error()
    {
        var initializer = new ProtoWriter().Varint(1, 3).Varint(2, (int)OnnxDataType.Float).Float(4, 1f).String(8, "bias");
        var path = _scratch.File("short.onnx");
        File.WriteAllBytes(path, new ProtoWriter().Message(7, new ProtoWriter().Message(5, initializer)).ToArray());

        var error = Assert.Throws<InvalidDataException>(() => OnnxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("'bias'", error.Message);
    }

    [Fact]
    public void Dimensions_whose_product_overflows_are_an_error()
    {
        var initializer = new ProtoWriter().Varint(1, 1L << 30).Varint(1, 1L << 30).Varint(1, 1L << 30)
            .Varint(2, (int)OnnxDataType.Float).String(8, "huge");
        var path = _scratch.File("huge.onnx");
        File.WriteAllBytes(path, new ProtoWriter().Message(7, new ProtoWriter().Message(5, initializer)).ToArray());

        var error = Assert.Throws<InvalidDataException>(() => OnnxReader.Read(path));

        Assert.Contains(path, error.Message);
        Assert.Contains("'huge'", error.Message);
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        var path = _scratch.File("absent.onnx");
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => OnnxReader.Read(path)).Message);
    }

    /// <summary>Writes protocol-buffer fields, for hand-built ONNX files.</summary>
    private sealed class ProtoWriter
    {
        private readonly MemoryStream _bytes = new();

        public ProtoWriter Varint(int field, long value) => Key(field, 0).RawVarint((ulong)value);

        public ProtoWriter Float(int field, float value)
        {
            var bytes = new byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(bytes, value);
            return Key(field, 5).Raw(bytes);
        }

        public ProtoWriter Bytes(int field, byte[] value) => Key(field, 2).RawVarint((ulong)value.Length).Raw(value);
        public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));
        public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());
        public byte[] ToArray() => _bytes.ToArray();

        private ProtoWriter Key(int field, int wireType) => RawVarint((ulong)(field << 3 | wireType));

        private ProtoWriter RawVarint(ulong value)
        {
            for (; value >= 0x80; value >>= 7) _bytes.WriteByte((byte)(value | 0x80));
            _bytes.WriteByte((byte)value);
            return this;
        }

        private ProtoWriter Raw(byte[] bytes)
        {
            _bytes.Write(bytes);
            return this;
        }
    }
}
