namespace IlgpuDiffusion.Tensors.IO;

/// <summary>ONNX <c>TensorProto.DataType</c> values.</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
}

/// <summary>A node attribute; the fields its type does not use are null or empty.</summary>
public sealed record OnnxAttribute(
    string Name, long? Int, float? Float, string? String, IReadOnlyList<long> Ints, IReadOnlyList<float> Floats,
    HostTensor? Tensor);

public sealed record OnnxNode(
    string Name, string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, OnnxAttribute> Attributes)
{
    public long Int(string name, long? fallback = null) =>
        Find(name)?.Int ?? fallback ?? throw Missing(name, "int");

    public float Float(string name, float? fallback = null) =>
        Find(name)?.Float ?? fallback ?? throw Missing(name, "float");

    public string String(string name, string? fallback = null) =>
        Find(name)?.String ?? fallback ?? throw Missing(name, "string");

    public IReadOnlyList<long> Ints(string name, IReadOnlyList<long>? fallback = null) =>
        Find(name) is { Ints.Count: > 0 } attribute ? attribute.Ints : fallback ?? throw Missing(name, "ints");

    private OnnxAttribute? Find(string name) => Attributes.GetValueOrDefault(name);

    private InvalidDataException Missing(string name, string kind) =>
        new($"ONNX node '{Name}' ({OpType}) has no {kind} attribute '{name}'");
}

/// <summary>A graph input or output: element type and shape (null for a symbolic dimension).</summary>
public sealed record OnnxValueInfo(string Name, OnnxDataType ElementType, IReadOnlyList<long?> Shape);

public sealed class OnnxGraph
{
    public required string Name { get; init; }
    public required string ProducerName { get; init; }
    /// <summary>Opset version of the default (ai.onnx) domain.</summary>
    public required long OpsetVersion { get; init; }
    /// <summary>Nodes in file order, which ONNX requires to be topological.</summary>
    public required IReadOnlyList<OnnxNode> Nodes { get; init; }
    /// <summary>Initializers in file order; floating types as float32, integer types as int32.</summary>
    public required IReadOnlyDictionary<string, HostTensor> Initializers { get; init; }
    /// <summary>Graph inputs as listed; exporters before IR version 4 list the initializers here too.</summary>
    public required IReadOnlyList<OnnxValueInfo> Inputs { get; init; }
    public required IReadOnlyList<OnnxValueInfo> Outputs { get; init; }
}

/// <summary>Reads an ONNX model (ModelProto) with a hand-written protocol-buffer decoder: the graph's
/// nodes, initializers, inputs and outputs. Fields not needed to run a graph are skipped.</summary>
public static class OnnxReader
{
    public static OnnxGraph Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file not found: {path}", path);
        return ReadModel(File.ReadAllBytes(path), path);
    }

    // ModelProto: 2 producer_name, 7 graph, 8 opset_import.
    private static OnnxGraph ReadModel(ReadOnlySpan<byte> bytes, string path)
    {
        var model = new ProtoReader(bytes, $"{path}: ModelProto");
        string producer = "";
        long opset = 0;
        ReadOnlySpan<byte> graph = default;
        bool hasGraph = false;
        while (model.Next(out int field, out var wire))
        {
            switch (field)
            {
                case 2: producer = model.String(wire); break;
                case 7: graph = model.Bytes(wire); hasGraph = true; break;
                case 8: opset = ReadOpsetImport(model.Bytes(wire), path) ?? opset; break;
                default: model.Skip(wire); break;
            }
        }
        if (!hasGraph) throw new InvalidDataException($"{path}: ONNX model has no graph");
        return ReadGraph(graph, path, producer, opset);
    }

    // OperatorSetIdProto: 1 domain, 2 version. Returns the version for the default domain only.
    private static long? ReadOpsetImport(ReadOnlySpan<byte> bytes, string path)
    {
        var opset = new ProtoReader(bytes, $"{path}: opset_import");
        string domain = "";
        long version = 0;
        while (opset.Next(out int field, out var wire))
        {
            switch (field)
            {
                case 1: domain = opset.String(wire); break;
                case 2: version = opset.Int64(wire); break;
                default: opset.Skip(wire); break;
            }
        }
        return domain is "" or "ai.onnx" ? version : null;
    }

    // GraphProto: 1 node, 2 name, 5 initializer, 11 input, 12 output.
    private static OnnxGraph ReadGraph(ReadOnlySpan<byte> bytes, string path, string producer, long opset)
    {
        var graph = new ProtoReader(bytes, $"{path}: GraphProto");
        string name = "";
        var nodes = new List<OnnxNode>();
        var initializers = new OrderedDictionary<string, HostTensor>();
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        while (graph.Next(out int field, out var wire))
        {
            switch (field)
            {
                case 1: nodes.Add(ReadNode(graph.Bytes(wire), $"{path}: node {nodes.Count}")); break;
                case 2: name = graph.String(wire); break;
                case 5:
                {
                    var (initializerName, tensor) = ReadTensor(graph.Bytes(wire), $"{path}: initializer {initializers.Count}");
                    if (!initializers.TryAdd(initializerName, tensor))
                    {
                        throw new InvalidDataException($"{path}: initializer '{initializerName}' appears twice");
                    }
                    break;
                }
                case 11: inputs.Add(ReadValueInfo(graph.Bytes(wire), $"{path}: graph input {inputs.Count}")); break;
                case 12: outputs.Add(ReadValueInfo(graph.Bytes(wire), $"{path}: graph output {outputs.Count}")); break;
                default: graph.Skip(wire); break;
            }
        }
        return new OnnxGraph
        {
            Name = name, ProducerName = producer, OpsetVersion = opset,
            Nodes = nodes, Initializers = initializers, Inputs = inputs, Outputs = outputs,
        };
    }

    // NodeProto: 1 input, 2 output, 3 name, 4 op_type, 5 attribute.
    private static OnnxNode ReadNode(ReadOnlySpan<byte> bytes, string context)
    {
        var node = new ProtoReader(bytes, context);
        string name = "", opType = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new OrderedDictionary<string, OnnxAttribute>();
        while (node.Next(out int field, out var wire))
        {
            switch (field)
            {
                case 1: inputs.Add(node.String(wire)); break;
                case 2: outputs.Add(node.String(wire)); break;
                case 3: name = node.String(wire); break;
                case 4: opType = node.String(wire); break;
                case 5:
                {
                    var attribute = ReadAttribute(node.Bytes(wire), $"{context}: attribute {attributes.Count}");
                    attributes[attribute.Name] = attribute;
                    break;
                }
                default: node.Skip(wire); break;
            }
        }
        return new OnnxNode(name, opType, inputs, outputs, attributes);
    }

    // AttributeProto: 1 name, 2 f, 3 i, 4 s, 5 t, 7 floats, 8 ints.
    private static OnnxAttribute ReadAttribute(ReadOnlySpan<byte> bytes, string context)
    {
        var attribute = new ProtoReader(bytes, context);
        string name = "";
        long? intValue = null;
        float? floatValue = null;
        string? stringValue = null;
        HostTensor? tensor = null;
        var ints = new List<long>();
        var floats = new List<float>();
        while (attribute.Next(out int field, out var wire))
        {
            switch (field)
            {
                case 1: name = attribute.String(wire); break;
                case 2: floatValue = attribute.Float(wire); break;
                case 3: intValue = attribute.Int64(wire); break;
                case 4: stringValue = attribute.String(wire); break;
                case 5: tensor = ReadTensor(attribute.Bytes(wire), $"{context}: tensor").Tensor; break;
                case 7: attribute.Floats(wire, floats); break;
                case 8: attribute.Int64s(wire, ints); break;
                default: attribute.Skip(wire); break;
            }
        }
        return new OnnxAttribute(name, intValue, floatValue, stringValue, ints, floats, tensor);
    }

    // TensorProto: 1 dims, 2 data_type, 3 segment, 4 float_data, 5 int32_data, 7 int64_data, 8 name,
    // 9 raw_data, 10 double_data, 14 data_location.
    private static (string Name, HostTensor Tensor) ReadTensor(ReadOnlySpan<byte> bytes, string context)
    {
        var tensor = new ProtoReader(bytes, context);
        string name = "";
        var dims = new List<long>();
        var dataType = OnnxDataType.Undefined;
        ReadOnlySpan<byte> raw = default;
        bool hasRaw = false;
        var floats = new List<float>();
        var doubles = new List<double>();
        var integers = new List<long>(); // int32_data and int64_data alike
        while (tensor.Next(out int field, out var wire))
        {
            switch (field)
            {
                case 1: tensor.Int64s(wire, dims); break;
                case 2: dataType = (OnnxDataType)tensor.Int64(wire); break;
                case 3: throw new InvalidDataException($"{context}: segmented tensors are not supported");
                case 4: tensor.Floats(wire, floats); break;
                case 5 or 7: tensor.Int64s(wire, integers); break;
                case 8: name = tensor.String(wire); break;
                case 9: raw = tensor.Bytes(wire); hasRaw = true; break;
                case 10: tensor.Doubles(wire, doubles); break;
                case 14:
                    if (tensor.Int64(wire) != 0)
                    {
                        throw new InvalidDataException($"{context} '{name}': external data is not supported");
                    }
                    break;
                default: tensor.Skip(wire); break;
            }
        }

        context = $"{context} '{name}'";
        var shape = dims.Select(d => d is >= 0 and <= int.MaxValue
            ? (int)d
            : throw new InvalidDataException($"{context}: dimension {d} out of range")).ToArray();
        // checked against the float32 (or int32) copy every type becomes, before anything is allocated
        long count = StoredElements.CheckedByteCount(StoredElementType.Float32, dims, context) / sizeof(float);
        if (hasRaw)
        {
            var type = StoredType(dataType, context);
            long needed = StoredElements.CheckedByteCount(type, dims, context);
            if (raw.Length != needed)
            {
                throw new InvalidDataException(
                    $"{context}: raw_data holds {raw.Length} bytes, shape [{string.Join(", ", shape)}] of {dataType} needs {needed}");
            }
            return (name, StoredElements.Decode(type, raw, shape, context));
        }

        long stored = dataType switch
        {
            OnnxDataType.Float => floats.Count,
            OnnxDataType.Double => doubles.Count,
            OnnxDataType.Int32 or OnnxDataType.Int64 => integers.Count,
            _ => throw new InvalidDataException($"{context}: unsupported data_type {dataType} without raw_data"),
        };
        if (stored != count)
        {
            throw new InvalidDataException(
                $"{context}: holds {stored} values, shape [{string.Join(", ", shape)}] needs {count}");
        }
        return (name, dataType switch
        {
            OnnxDataType.Float => HostTensor.FromFloats(shape, floats.ToArray()),
            OnnxDataType.Double => HostTensor.FromFloats(shape, doubles.Select(d => (float)d).ToArray()),
            _ => HostTensor.FromInts(shape, integers.Select(v => v is >= int.MinValue and <= int.MaxValue
                ? (int)v
                : throw new InvalidDataException($"{context}: value {v} does not fit in int32")).ToArray()),
        });
    }

    private static StoredElementType StoredType(OnnxDataType dataType, string context) => dataType switch
    {
        OnnxDataType.Float => StoredElementType.Float32,
        OnnxDataType.Double => StoredElementType.Float64,
        OnnxDataType.Float16 => StoredElementType.Float16,
        OnnxDataType.BFloat16 => StoredElementType.BFloat16,
        OnnxDataType.Int32 => StoredElementType.Int32,
        OnnxDataType.Int64 => StoredElementType.Int64,
        _ => throw new InvalidDataException($"{context}: unsupported data_type {dataType}"),
    };

    // ValueInfoProto: 1 name, 2 type → TypeProto: 1 tensor_type → 1 elem_type, 2 shape → 1 dim →
    // 1 dim_value | 2 dim_param.
    private static OnnxValueInfo ReadValueInfo(ReadOnlySpan<byte> bytes, string context)
    {
        var info = new ProtoReader(bytes, context);
        string name = "";
        var elementType = OnnxDataType.Undefined;
        var shape = new List<long?>();
        while (info.Next(out int field, out var wire))
        {
            if (field == 1) name = info.String(wire);
            else if (field == 2) ReadTypeProto(info.Bytes(wire), context, ref elementType, shape);
            else info.Skip(wire);
        }
        return new OnnxValueInfo(name, elementType, shape);
    }

    private static void ReadTypeProto(ReadOnlySpan<byte> bytes, string context, ref OnnxDataType elementType,
        List<long?> shape)
    {
        var type = new ProtoReader(bytes, context);
        while (type.NextMessage(1, out var tensorType))
            while (tensorType.Next(out int field, out var wire))
            {
                if (field == 1) elementType = (OnnxDataType)tensorType.Int64(wire);
                else if (field == 2) ReadShape(tensorType.Bytes(wire), context, shape);
                else tensorType.Skip(wire);
            }
    }

    private static void ReadShape(ReadOnlySpan<byte> bytes, string context, List<long?> shape)
    {
        var shapeProto = new ProtoReader(bytes, context);
        while (shapeProto.NextMessage(1, out var dim))
        {
            long? value = null; // a symbolic dimension (dim_param) stays unknown
            while (dim.Next(out int field, out var wire))
            {
                if (field == 1) value = dim.Int64(wire);
                else dim.Skip(wire);
            }
            shape.Add(value);
        }
    }
}
