using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>A record that mirrors one section of a config file: its name and its checks.</summary>
public interface IConfigSectionRecord
{
    static abstract string Section { get; }

    /// <summary>Checks value ranges and rules between keys; a failure is a <see cref="ConfigException"/> naming the key.</summary>
    void Validate();
}

/// <summary>
/// Binds a section to its record by name: each settable property reads the key spelt in snake_case
/// (<c>ImChannels</c> ← <c>im_channels</c>), as its type (int, double, bool, string, int[], bool[], string[], or a
/// record of the same shape for a nested object such as <c>ldm_params.condition_config</c>).
/// A <c>required</c> property must be present; any other keeps its initial value as the default (null for a nested record).
/// A missing, mistyped or unknown key is a <see cref="ConfigException"/>. Does not validate.
/// </summary>
public static class ConfigBinder
{
    public static T Bind<T>(ConfigSection section) where T : class, IConfigSectionRecord => (T)Bind(typeof(T), section);

    private static object Bind(Type type, ConfigSection section)
    {
        // required members only bind the compiler; the constructor runs the initialisers that hold the defaults
        var record = Activator.CreateInstance(type)!;
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.SetMethod is null) continue;
            bool required = property.IsDefined(typeof(RequiredMemberAttribute));
            var fallback = required ? null : property.GetValue(record);
            var key = SnakeCase(property.Name);
            var value = IsNestedRecord(property.PropertyType)
                ? section.Child(key) is { } child ? Bind(property.PropertyType, child) : required ? throw Missing(section, key) : fallback
                : Read(section, key, property.PropertyType, fallback);
            property.SetValue(record, value);
        }
        section.RejectUnknownKeys();
        return record;
    }

    private static bool IsNestedRecord(Type type) => type.IsClass && type != typeof(string) && !type.IsArray;

    private static ConfigException Missing(ConfigSection section, string key) => new(section.Key(key), "is missing", section.Source);

    /// <summary>Binds a section given as JSON (a parity manifest entry's); errors name <paramref name="source"/>.</summary>
    public static T FromJson<T>(JsonElement section, string source = "JSON") where T : class, IConfigSectionRecord =>
        Bind<T>(ConfigJson.Section(section, T.Section, source));

    private static object Read(ConfigSection s, string key, Type type, object? fallback) => type switch
    {
        _ when type == typeof(int) => s.Int(key, (int?)fallback),
        _ when type == typeof(double) => s.Double(key, (double?)fallback),
        _ when type == typeof(bool) => s.Bool(key, (bool?)fallback),
        _ when type == typeof(string) => s.String(key, (string?)fallback),
        _ when type == typeof(int[]) => s.Ints(key),
        _ when type == typeof(bool[]) => s.Bools(key),
        _ when type == typeof(string[]) => s.Strings(key),
        _ => throw new NotSupportedException($"config key {s.Key(key)}: no reader for {type.Name}"),
    };

    /// <summary>ZChannels → z_channels.</summary>
    internal static string SnakeCase(string pascal)
    {
        var key = new StringBuilder(pascal.Length + 4);
        for (int i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0) key.Append('_');
            key.Append(char.ToLowerInvariant(pascal[i]));
        }
        return key.ToString();
    }
}
