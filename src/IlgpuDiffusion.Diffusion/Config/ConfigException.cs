namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>A configuration value that is missing, malformed or breaks a validity rule; <see cref="Key"/>
/// is its dotted path (<c>autoencoder_params.mid_channels[0]</c>) and starts the message, after the
/// configuration's <see cref="File"/> (<c>configs/mnist.json: </c>) when the value came from one, or after the
/// override (<c>--set train_params:ldm_epochs=ten: </c>) when it came from the command line.
/// Errors that no single key is to blame for (malformed JSON, a malformed override) are <see cref="InvalidDataException"/>s.</summary>
public sealed class ConfigException(string key, string problem, string? file = null, Exception? inner = null)
    : Exception(file is null ? $"{key} {problem}" : $"{file}: {key} {problem}", inner)
{
    public string Key { get; } = key;
    public string Problem { get; } = problem;
    public string? File { get; } = file;

    /// <summary>The same error, attributed to <paramref name="file"/> (the records' <c>Validate()</c> does not know
    /// where they came from).</summary>
    public ConfigException In(string file) => new(Key, Problem, file, this);
}
