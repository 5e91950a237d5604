using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// Typed, checked reads from one section of a configuration (JSON file plus <c>--set section:key=value</c>
/// overrides): a missing key, a value of the wrong type and an unknown key are <see cref="ConfigException"/>s
/// that name the source and <c>section.key</c>. IConfiguration keeps every scalar as a string and a list
/// as children <c>0</c>, <c>1</c>, …; JSON <c>null</c> and <c>{}</c> become a key without value or children,
/// <c>[]</c> an empty string. The reads undo that. A nested object (<c>ldm_params.condition_config</c>) is a
/// <see cref="Child"/> section whose <paramref name="name"/> is the IConfiguration path (<c>ldm_params:condition_config</c>).
/// </summary>
public sealed class ConfigSection(IConfiguration root, string name, string source)
{
    private readonly IConfigurationSection _section = root.GetSection(name);
    private readonly HashSet<string> _read = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The dotted path of the section, as errors name it.</summary>
    public string Name => name.Replace(':', '.');
    public string Source => source;

    public string Key(string key) => $"{Name}.{key}";

    private ConfigException Error(string key, string problem) => new(Key(key), problem, source);

    /// <summary>The section itself must be a non-empty object (not missing, not a scalar, list or null).</summary>
    public void RequireObject()
    {
        var children = _section.GetChildren().ToList();
        if (children.Count > 0 && !children.Any(c => IsIndex(c.Key, children.Count))) return;
        if (!Present(root, name)) throw new ConfigException(name, "is missing", source);
        var found = children.Count > 0 ? "a list" : Describe(_section.Value);
        throw new ConfigException(name, $"must be an object of keys, got {found}", source);
    }

    /// <summary>The object under <paramref name="key"/>, or null when the key is absent (or null: the reference's
    /// YAML writes an absent condition that way).</summary>
    public ConfigSection? Child(string key)
    {
        _read.Add(key);
        var child = _section.GetSection(key);
        var items = child.GetChildren().ToList();
        if (items.Count == 0 && child.Value is null) return null;
        if (items.Count == 0 || items.Any(c => IsIndex(c.Key, items.Count)))
            throw Error(key, $"must be an object of keys, got {(items.Count > 0 ? "a list" : Describe(child.Value))}");
        return new ConfigSection(root, $"{name}:{key}", source);
    }

    public string String(string key, string? fallback = null) =>
        Scalar(key, "a string") ?? fallback ?? throw Error(key, "is missing");

    public int Int(string key, int? fallback = null) => Parse(key, fallback, "an integer", ParseInt);

    /// <summary>A finite number (the strings "NaN" and "Infinity" would parse but are never meant).</summary>
    public double Double(string key, double? fallback = null) => Parse(key, fallback, "a number", ParseDouble);

    public bool Bool(string key, bool? fallback = null) => Parse(key, fallback, "true or false", ParseBool);

    public int[] Ints(string key) => List(key, "integers", "an integer", ParseInt);

    public bool[] Bools(string key) => List(key, "true/false values", "true or false", ParseBool);

    public string[] Strings(string key) => RawList(key, "strings", "a string");

    private static int? ParseInt(string s) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
    private static double? ParseDouble(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : null;
    private static bool? ParseBool(string s) => bool.TryParse(s, out var v) ? v : null;

    private static string Describe(string? raw) => raw switch
    {
        null => "null",
        "" => "an empty value",
        _ => $"'{raw}'",
    };

    private static bool IsIndex(string key, int count) =>
        int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < count;

    /// <summary>Whether the key is there at all, even as null (a key with neither value nor children).</summary>
    private static bool Present(IConfiguration parent, string key) =>
        parent.GetChildren().Any(c => string.Equals(c.Key, key, StringComparison.OrdinalIgnoreCase));

    /// <summary>The key's string value, or null when the key is absent; a list or object is an error.</summary>
    private string? Scalar(string key, string expected)
    {
        _read.Add(key);
        var child = _section.GetSection(key);
        if (child.Value is not null) return child.Value;
        if (child.GetChildren().Any()) throw Error(key, $"must be {expected}, got a list or object");
        if (Present(_section, key)) throw Error(key, $"must be {expected}, got null");
        return null;
    }

    private T Parse<T>(string key, T? fallback, string expected, Func<string, T?> parse) where T : struct
    {
        var raw = Scalar(key, expected);
        if (raw is null) return fallback ?? throw Error(key, "is missing");
        return parse(raw) ?? throw Error(key, $"must be {expected}, got {Describe(raw)}");
    }

    private T[] List<T>(string key, string expectedList, string expected, Func<string, T?> parse) where T : struct
    {
        var raw = RawList(key, expectedList, expected);
        var values = new T[raw.Length];
        for (int i = 0; i < raw.Length; i++)
            values[i] = parse(raw[i]) ?? throw Error($"{key}[{i}]", $"must be {expected}, got {Describe(raw[i])}");
        return values;
    }

    /// <summary>A list's elements as written: present, a list (not an object), no element null or nested.</summary>
    private string[] RawList(string key, string expectedList, string expected)
    {
        _read.Add(key);
        var child = _section.GetSection(key);
        var items = child.GetChildren().ToList();
        if (child.Value == "") throw Error(key, "must not be empty");
        if (items.Count == 0)
            throw Error(key, Present(_section, key) ? $"must be a list of {expectedList}, got {Describe(child.Value)}" : "is missing");
        var values = new string[items.Count];
        foreach (var item in items)
        {
            // a list's children are exactly 0..n-1; any other name means the value is an object
            if (!IsIndex(item.Key, items.Count)) throw Error(key, $"must be a list of {expectedList}, got an object (key '{item.Key}')");
            int i = int.Parse(item.Key, CultureInfo.InvariantCulture);
            if (item.Value is null)
                throw Error($"{key}[{i}]", $"must be {expected}, got {(item.GetChildren().Any() ? "a list or object" : "null")}");
            values[i] = item.Value;
        }
        return values;
    }

    /// <summary>After all reads: any key of the section that was not read is unknown (a typo, or a key of another section).</summary>
    public void RejectUnknownKeys()
    {
        var unknown = _section.GetChildren().Select(c => c.Key).Where(k => !_read.Contains(k)).Select(Key).ToList();
        if (unknown.Count > 0)
        {
            var problem = unknown.Count > 1 ? "are not known keys" : "is not a known key";
            throw new ConfigException(string.Join(", ", unknown), $"{problem} (known: {string.Join(", ", _read.Order())})", source);
        }
    }
}
