using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// How the config records map to JSON: a property's JSON name is its C# name in snake_case
/// (<c>ZChannels</c> ↔ <c>z_channels</c>, <c>AutoencoderImgSaveSteps</c> ↔ <c>autoencoder_img_save_steps</c>),
/// the keys of the original project's YAML configs. Every property is required; keys the records do not
/// know are ignored. Reading does not validate: call <c>Validate()</c> (the models do).
/// </summary>
public static class ConfigJson
{
    public static JsonSerializerOptions Options { get; } = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Reads one section; a missing or mistyped key becomes a <see cref="ConfigException"/> naming the section.</summary>
    public static T Read<T>(JsonElement section, string sectionName)
    {
        try
        {
            return section.Deserialize<T>(Options) ?? throw new ConfigException(sectionName, "must be an object, got null");
        }
        catch (JsonException e)
        {
            throw new ConfigException(sectionName, e.Message);
        }
    }
}
