namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The checks the records' <c>Validate()</c> methods share; each failure names the key, prefixed by its section.</summary>
internal sealed class ConfigCheck(string section)
{
    public ConfigException Fail(string key, string problem) => new($"{section}.{key}", problem);

    public void Positive(string key, int value)
    {
        if (value <= 0) throw Fail(key, $"must be positive, got {value}");
    }

    public void Positive(string key, double value)
    {
        if (!(value > 0)) throw Fail(key, $"must be positive, got {value}");
    }

    public void NonNegative(string key, double value)
    {
        if (!(value >= 0)) throw Fail(key, $"must not be negative, got {value}");
    }

    public void NotEmpty(string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) throw Fail(key, "must not be empty");
    }

    public void PositiveList(string key, int[]? values)
    {
        if (values is null || values.Length == 0) throw Fail(key, "must not be empty");
        for (int i = 0; i < values.Length; i++) Positive($"{key}[{i}]", values[i]);
    }

    public void Length<T>(string key, T[]? values, int expected, string why)
    {
        if (values is null || values.Length != expected)
            throw Fail(key, $"must have {expected} entries ({why}), got {values?.Length ?? 0}");
    }

    public void Equal(string key, int value, int expected, string what)
    {
        if (value != expected) throw Fail(key, $"must equal {what} ({expected}), got {value}");
    }

    /// <summary>Every channel count is normalised by GroupNorm(norm_channels) and may be attended with num_heads heads.</summary>
    public void Divisible(string key, int[] channels, int normChannels, int numHeads)
    {
        for (int i = 0; i < channels.Length; i++) Divisible($"{key}[{i}]", channels[i], normChannels, numHeads);
    }

    public void Divisible(string key, int channels, int normChannels, int numHeads)
    {
        if (channels % normChannels != 0) throw Fail(key, $"must be divisible by norm_channels ({normChannels}), got {channels}");
        if (channels % numHeads != 0) throw Fail(key, $"must be divisible by num_heads ({numHeads}), got {channels}");
    }
}
