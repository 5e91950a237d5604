using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// JSON into IConfiguration, for the one binding path (<see cref="ConfigSection"/> and <see cref="ConfigBinder"/>):
/// configuration files and the config sections of parity manifest entries both go
/// through Microsoft.Extensions.Configuration.Json.
/// </summary>
internal static class ConfigJson
{
    /// <summary>Reads a JSON object; malformed JSON, a non-object top level or a duplicate key is an
    /// <see cref="InvalidDataException"/> naming <paramref name="source"/> (and the line when known).</summary>
    public static IConfigurationRoot Read(Stream json, string source)
    {
        try
        {
            return new ConfigurationBuilder().AddJsonStream(json).Build();
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            // the parser's JsonException (thrown as is, or wrapped by the provider) knows the 0-based position;
            // the provider's own FormatExceptions (duplicate key, top level not an object) do not
            var parser = e as JsonException ?? e.InnerException as JsonException;
            var where = parser is { LineNumber: { } line, BytePositionInLine: { } column }
                ? $" at line {line + 1}, column {column + 1}"
                : "";
            var detail = parser is null ? e.Message : parser.Message.Split(" LineNumber:")[0].Split(" Path:")[0];
            throw new InvalidDataException($"{source}: invalid JSON{where}: {detail}", e);
        }
    }

    /// <summary>A section given as a JSON element (a parity manifest entry's <c>autoencoder_params</c>),
    /// ready for <see cref="ConfigBinder.Bind{T}"/>.</summary>
    public static ConfigSection Section(JsonElement element, string name, string source)
    {
        var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WritePropertyName(name);
            element.WriteTo(writer);
            writer.WriteEndObject();
        }
        json.Position = 0;
        var section = new ConfigSection(Read(json, source), name, source);
        section.RequireObject();
        return section;
    }
}
