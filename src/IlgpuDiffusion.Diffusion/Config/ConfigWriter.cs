using System.Reflection;
using System.Text.Json.Nodes;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// A bound configuration back to JSON, key for key as <see cref="ConfigBinder"/> reads it (snake_case of each settable
/// property, defaults of optional keys written out, an absent nested section left out): the resolved config of a run,
/// file and overrides together, which loads again as a config file.
/// </summary>
public static class ConfigWriter
{
    public static JsonObject ToJson(ExperimentConfig config)
    {
        object[] sections = [config.Dataset, config.Diffusion, config.Autoencoder, config.Ldm, config.Train];
        var json = new JsonObject();
        foreach (var (name, section) in ExperimentConfig.Sections.Zip(sections)) json[name] = Section(section);
        return json;
    }

    private static JsonObject Section(object record)
    {
        var json = new JsonObject();
        foreach (var property in record.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.SetMethod is null || Value(property.GetValue(record)) is not { } value) continue;
            json[ConfigBinder.SnakeCase(property.Name)] = value;
        }
        return json;
    }

    private static JsonNode? Value(object? value) => value switch
    {
        null => null,
        int i => JsonValue.Create(i),
        double d => JsonValue.Create(d),
        bool b => JsonValue.Create(b),
        string s => JsonValue.Create(s),
        int[] list => new JsonArray([.. list.Select(v => (JsonNode?)JsonValue.Create(v))]),
        bool[] list => new JsonArray([.. list.Select(v => (JsonNode?)JsonValue.Create(v))]),
        string[] list => new JsonArray([.. list.Select(v => (JsonNode?)JsonValue.Create(v))]),
        _ => Section(value),
    };
}
