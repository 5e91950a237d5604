namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>A configuration value that is missing, malformed or breaks a validity rule; <see cref="Key"/>
/// is its dotted path (<c>autoencoder_params.mid_channels[0]</c>) and starts the message.</summary>
public sealed class ConfigException(string key, string problem) : Exception($"{key} {problem}")
{
    public string Key { get; } = key;
}
