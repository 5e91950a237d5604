using System.Text.Json;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors.Parity;

/// <summary>One entry of a fixture folder's manifest.json, with its tensors loaded on demand.
/// Hyper-parameters are read from the entry by name, so unseen cases of a known kind work too.</summary>
public sealed class ParityCase
{
    private readonly JsonElement _entry;
    private IReadOnlyDictionary<string, HostTensor>? _tensors;

    public ParityCase(string folder, JsonElement entry)
    {
        _entry = entry;
        Folder = folder;
        Name = RequiredString("case");
        File = RequiredString("file");
        Tolerance = entry.TryGetProperty("rel_l2_tolerance", out var tol) ? tol.GetDouble()
            : throw new InvalidDataException($"manifest.json: case '{Name}' has no rel_l2_tolerance");
    }

    public string Folder { get; }
    public string Name { get; }
    public string File { get; }
    public double Tolerance { get; }
    public JsonElement Entry => _entry;

    public IReadOnlyDictionary<string, HostTensor> Tensors => _tensors ??= SafeTensors.Read(Path.Combine(Folder, File));

    public HostTensor Tensor(string name) => Tensors.TryGetValue(name, out var t) ? t
        : throw new InvalidDataException($"{File}: case '{Name}' has no tensor '{name}'");

    public bool Has(string name) => Tensors.ContainsKey(name);

    public IlgpuDiffusion.Tensors.Tensor Load(string name, Device device, bool requiresGrad = false)
    {
        var t = IlgpuDiffusion.Tensors.Tensor.FromHost(Tensor(name), device);
        t.RequiresGrad = requiresGrad;
        return t;
    }

    public int Int(string field, int? fallback = null) =>
        _entry.TryGetProperty(field, out var v) ? v.GetInt32() : fallback ?? throw Missing(field);

    public float Float(string field, float? fallback = null) =>
        _entry.TryGetProperty(field, out var v) ? v.GetSingle() : fallback ?? throw Missing(field);

    public float[] Floats(string field) =>
        _entry.TryGetProperty(field, out var v) ? v.EnumerateArray().Select(e => e.GetSingle()).ToArray() : throw Missing(field);

    public string? String(string field) =>
        _entry.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>The ordered [name, shape] list of a module case's parameters.</summary>
    public IReadOnlyList<(string Name, int[] Shape)> Parameters() =>
        _entry.TryGetProperty("parameters", out var p)
            ? p.EnumerateArray().Select(e => (e[0].GetString()!, e[1].EnumerateArray().Select(d => d.GetInt32()).ToArray())).ToList()
            : throw Missing("parameters");

    private string RequiredString(string field) =>
        _entry.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Missing(field);

    private InvalidDataException Missing(string field) =>
        new($"manifest.json: case '{(_entry.TryGetProperty("case", out var c) ? c.GetString() : "?")}' has no field '{field}'");

    /// <summary>Reads every case of <paramref name="folder"/>/manifest.json.</summary>
    public static IReadOnlyList<ParityCase> ReadManifest(string folder)
    {
        string path = Path.Combine(folder, "manifest.json");
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"no manifest.json in fixture folder '{folder}'", path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(System.IO.File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{path}: expected a JSON array of cases");
            return doc.RootElement.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.Object
                    && (!e.TryGetProperty("rel_l2_tolerance", out var tolerance) || tolerance.ValueKind == JsonValueKind.Number)
                ? new ParityCase(folder, e.Clone())
                : throw new InvalidDataException($"{path}: entry {i} is not a case object with a numeric rel_l2_tolerance")).ToList();
        }
    }
}
