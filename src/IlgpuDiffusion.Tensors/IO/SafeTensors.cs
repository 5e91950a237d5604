using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace IlgpuDiffusion.Tensors.IO;

/// <summary>Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes
/// of JSON (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}</c>),
/// then the raw little-endian data, offsets counted from the end of the header.</summary>
public static class SafeTensors
{
    private const string MetadataKey = "__metadata__";
    // The reference (Rust) implementation refuses larger headers too; it bounds what a corrupt
    // length field makes us allocate.
    private const long MaxHeaderBytes = 100_000_000;

    /// <summary>All tensors of the file, in file order. Floating types become float32, integer
    /// types int32.</summary>
    public static IReadOnlyDictionary<string, HostTensor> Read(string path)
    {
        using var file = OpenForReading(path);
        var (header, dataStart) = ReadHeader(file, path);
        using (header)
        {
            long dataLength = file.Length - dataStart;
            var entries = new List<(string Name, StoredElementType Type, int[] Shape, long Begin, long End)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in header.RootElement.EnumerateObject())
            {
                if (entry.Name == MetadataKey) continue;
                var context = $"{path}: tensor '{entry.Name}'";
                if (!names.Add(entry.Name)) throw new InvalidDataException($"{context}: the name appears twice in the header");
                var (type, shape, begin, end) = ParseEntry(entry.Value, context, dataLength);
                entries.Add((entry.Name, type, shape, begin, end));
            }
            CheckLayout(entries.Select(e => (e.Name, e.Begin, e.End)).ToList(), dataLength, path);

            var tensors = new OrderedDictionary<string, HostTensor>();
            foreach (var (name, type, shape, begin, end) in entries)
            {
                var context = $"{path}: tensor '{name}'";
                var bytes = new byte[end - begin];
                ReadExactly(file, dataStart + begin, bytes, context);
                tensors.Add(name, StoredElements.Decode(type, bytes, shape, context));
            }
            return tensors;
        }
    }

    /// <summary>As the reference implementation requires: the tensors' byte ranges tile the data section
    /// exactly, without overlaps or gaps, so no two tensors share bytes and a relabelled dtype or shape
    /// cannot go unnoticed.</summary>
    private static void CheckLayout(List<(string Name, long Begin, long End)> entries, long dataLength, string path)
    {
        long covered = 0;
        string previous = "";
        foreach (var (name, begin, end) in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (begin != covered)
            {
                throw new InvalidDataException(begin < covered
                    ? $"{path}: tensor '{name}': data_offsets [{begin}, {end}] overlap those of '{previous}' (which end at {covered})"
                    : $"{path}: tensor '{name}': data_offsets [{begin}, {end}] leave bytes [{covered}, {begin}) unused");
            }
            covered = end;
            previous = name;
        }
        if (covered != dataLength)
        {
            string after = previous.Length > 0 ? $": those after tensor '{previous}' are unused" : "";
            throw new InvalidDataException($"{path}: the tensors cover {covered} of the {dataLength} data bytes{after} "
                + "(the file is damaged or was edited, e.g. a dtype relabelled)");
        }
    }

    /// <summary>The string map under <c>__metadata__</c>; empty when the file has none.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var file = OpenForReading(path);
        var (header, _) = ReadHeader(file, path);
        using (header)
        {
            var metadata = new OrderedDictionary<string, string>();
            if (!header.RootElement.TryGetProperty(MetadataKey, out var map)) return metadata;
            if (map.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{path}: {MetadataKey} is not an object");
            }
            foreach (var item in map.EnumerateObject())
            {
                if (item.Value.ValueKind != JsonValueKind.String)
                {
                    throw new InvalidDataException($"{path}: {MetadataKey} entry '{item.Name}' is not a string");
                }
                metadata.Add(item.Name, item.Value.GetString()!);
            }
            return metadata;
        }
    }

    /// <summary>Writes float32 and int32 tensors in the given order. The file is written next to
    /// <paramref name="path"/> under a temporary name, flushed to disk and then moved over
    /// <paramref name="path"/>, so a failure never leaves a partial file there.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, HostTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = tensors.ToList();
        var header = BuildHeader(entries, metadata);

        var temporaryPath = path + ".tmp";
        try
        {
            using (var file = new FileStream(temporaryPath, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                file.Write(length);
                file.Write(header);
                foreach (var (_, tensor) in entries)
                {
                    WriteData(file, tensor);
                }
                file.Flush(flushToDisk: true);
            }
            File.Move(temporaryPath, path, overwrite: true);
        }
        catch
        {
            // Exists is false when the folder itself is missing, where Delete would throw and hide the cause.
            if (File.Exists(temporaryPath)) File.Delete(temporaryPath);
            throw;
        }
    }

    private static FileStream OpenForReading(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"safetensors file not found: {path}", path, e);
        }
    }

    private static (JsonDocument Header, long DataStart) ReadHeader(FileStream file, string path)
    {
        Span<byte> lengthBytes = stackalloc byte[8];
        if (file.Length < 8)
        {
            throw new InvalidDataException($"{path}: truncated: {file.Length} bytes, fewer than the 8-byte header length");
        }
        ReadExactly(file, 0, lengthBytes, path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)(file.Length - 8))
        {
            throw new InvalidDataException(
                $"{path}: header length {headerLength} goes beyond the end of the file ({file.Length} bytes)");
        }
        if (headerLength > MaxHeaderBytes)
        {
            throw new InvalidDataException($"{path}: header length {headerLength} exceeds {MaxHeaderBytes} bytes");
        }
        var headerBytes = new byte[headerLength];
        ReadExactly(file, 8, headerBytes, path);
        JsonDocument header;
        try
        {
            header = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: header is not valid JSON: {e.Message}", e);
        }
        if (header.RootElement.ValueKind != JsonValueKind.Object)
        {
            header.Dispose();
            throw new InvalidDataException($"{path}: header is not a JSON object");
        }
        return (header, 8 + (long)headerLength);
    }

    private static (StoredElementType Type, int[] Shape, long Begin, long End) ParseEntry(
        JsonElement entry, string context, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{context}: entry is not a JSON object");
        }
        var dtype = RequireProperty(entry, "dtype", JsonValueKind.String, context).GetString();
        var type = dtype switch
        {
            "F32" => StoredElementType.Float32,
            "F64" => StoredElementType.Float64,
            "F16" => StoredElementType.Float16,
            "BF16" => StoredElementType.BFloat16,
            "I64" => StoredElementType.Int64,
            "I32" => StoredElementType.Int32,
            _ => throw new InvalidDataException($"{context}: unsupported dtype '{dtype}'"),
        };
        var shape = ReadIntegers(RequireProperty(entry, "shape", JsonValueKind.Array, context), "shape", context)
            .Select(dim => dim is >= 0 and <= int.MaxValue
                ? (int)dim
                : throw new InvalidDataException($"{context}: shape dimension {dim} out of range"))
            .ToArray();
        var offsets = ReadIntegers(RequireProperty(entry, "data_offsets", JsonValueKind.Array, context),
            "data_offsets", context);
        if (offsets.Length != 2)
        {
            throw new InvalidDataException($"{context}: data_offsets has {offsets.Length} values, not 2");
        }
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin || end > dataLength)
        {
            throw new InvalidDataException(
                $"{context}: data_offsets [{begin}, {end}] out of range of the {dataLength} data bytes");
        }
        long expectedBytes = StoredElements.CheckedByteCount(type, shape.Select(d => (long)d).ToArray(), context);
        if (end - begin != expectedBytes)
        {
            throw new InvalidDataException(
                $"{context}: data_offsets [{begin}, {end}] span {end - begin} bytes but {dtype} " +
                $"shape [{string.Join(", ", shape)}] needs {expectedBytes}");
        }
        return (type, shape, begin, end);
    }

    private static JsonElement RequireProperty(JsonElement entry, string name, JsonValueKind kind, string context)
    {
        if (!entry.TryGetProperty(name, out var value))
        {
            throw new InvalidDataException($"{context}: field '{name}' is missing");
        }
        if (value.ValueKind != kind)
        {
            throw new InvalidDataException($"{context}: field '{name}' is {value.ValueKind}, expected {kind}");
        }
        return value;
    }

    private static long[] ReadIntegers(JsonElement array, string field, string context) =>
        array.EnumerateArray()
            .Select(item => item.ValueKind == JsonValueKind.Number && item.TryGetInt64(out long value)
                ? value
                : throw new InvalidDataException($"{context}: field '{field}' holds {item}, not an integer"))
            .ToArray();

    private static void ReadExactly(FileStream file, long position, Span<byte> buffer, string context)
    {
        file.Position = position;
        try
        {
            file.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{context}: file ends early", e);
        }
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, HostTensor>> entries,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>();
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    writer.WriteString(key, value);
                }
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in entries)
            {
                ArgumentNullException.ThrowIfNull(tensor, name);
                if (name == MetadataKey || !names.Add(name))
                {
                    throw new ArgumentException($"tensor name '{name}' is reserved or repeated", nameof(entries));
                }
                long bytes = tensor.ElementCount * tensor.DType.SizeInBytes();
                writer.WriteStartObject(name);
                writer.WriteString("dtype", tensor.DType switch
                {
                    DType.Float32 => "F32",
                    DType.Int32 => "I32",
                    _ => throw new ArgumentException($"tensor '{name}': cannot write dtype {tensor.DType}"),
                });
                writer.WriteStartArray("shape");
                foreach (int dim in tensor.Shape) writer.WriteNumberValue(dim);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }
            writer.WriteEndObject();
        }
        // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
        int padding = (int)(-json.Length & 7);
        json.Write(Encoding.ASCII.GetBytes(new string(' ', padding)));
        return json.ToArray();
    }

    private static void WriteData(Stream file, HostTensor tensor)
    {
        var buffer = new byte[1 << 16];
        int used = 0;
        for (long i = 0; i < tensor.ElementCount; i++)
        {
            if (used == buffer.Length)
            {
                file.Write(buffer);
                used = 0;
            }
            var target = buffer.AsSpan(used, 4);
            if (tensor.Floats is { } floats) BinaryPrimitives.WriteSingleLittleEndian(target, floats[i]);
            else BinaryPrimitives.WriteInt32LittleEndian(target, tensor.Ints![i]);
            used += 4;
        }
        file.Write(buffer, 0, used);
    }
}
