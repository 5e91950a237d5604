using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// Typed, checked reads from one section of a configuration (JSON file plus <c>--set section:key=value</c>
/// overrides): a missing key, a value of the wrong type and an unknown key are errors that name the
/// file and <c>section.key</c>.
/// </summary>
public sealed class ConfigSection(IConfiguration root, string name, string source)
{
    private readonly IConfigurationSection _section = root.GetSection(name);
    private readonly HashSet<string> _read = new(StringComparer.OrdinalIgnoreCase);

    public string Name => name;
    public string Source => source;
    public bool Exists => _section.Exists();

    public string Key(string key) => $"{name}.{key}";

    private string? Raw(string key)
    {
        _read.Add(key);
        return _section[key];
    }

    private InvalidDataException Error(string key, string problem) => new($"{source}: {Key(key)} {problem}");

    public string String(string key, string? fallback = null) =>
        Raw(key) ?? fallback ?? throw Error(key, "is missing");

    public int Int(string key, int? fallback = null) => Parse<int>(key, fallback, "an integer",
        s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null);

    public float Float(string key, float? fallback = null) => Parse<float>(key, fallback, "a number",
        s => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null);

    public bool Bool(string key, bool? fallback = null) => Parse<bool>(key, fallback, "true or false",
        s => bool.TryParse(s, out var v) ? v : null);

    public int[] Ints(string key) => List<int>(key, "integers", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null);

    public bool[] Bools(string key) => List<bool>(key, "true/false values", s => bool.TryParse(s, out var v) ? v : null);

    private T Parse<T>(string key, T? fallback, string expected, Func<string, T?> parse) where T : struct
    {
        var raw = Raw(key);
        if (raw == null)
        {
            if (_section.GetSection(key).GetChildren().Any()) throw Error(key, $"must be {expected}, got a list or object");
            return fallback ?? throw Error(key, "is missing");
        }
        return parse(raw) ?? throw Error(key, $"must be {expected}, got '{raw}'");
    }

    private T[] List<T>(string key, string expected, Func<string, T?> parse) where T : struct
    {
        _read.Add(key);
        var child = _section.GetSection(key);
        if (child.Value != null) throw Error(key, $"must be a list of {expected}, got '{child.Value}'");
        var items = child.GetChildren().OrderBy(c => int.TryParse(c.Key, out var i) ? i : int.MaxValue).ToList();
        if (items.Count == 0) throw Error(key, "is missing or empty");
        return items.Select(c => parse(c.Value ?? "") ?? throw Error($"{key}[{c.Key}]", $"must be one of {expected}, got '{c.Value}'")).ToArray();
    }

    /// <summary>After all reads: any key of the section that was not read is unknown (a typo, or a key of another section).</summary>
    public void RejectUnknownKeys()
    {
        var unknown = _section.GetChildren().Select(c => c.Key).Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException($"{source}: unknown key{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(Key))} (known: {string.Join(", ", _read.Order())})");
    }
}
