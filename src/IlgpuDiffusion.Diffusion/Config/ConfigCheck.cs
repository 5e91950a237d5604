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

    /// <summary>Upper bounds keep a typo (an extra zero or three) from turning into an allocation the machine cannot make;
    /// <paramref name="why"/> says what the limit protects.</summary>
    public void AtMost(string key, long value, long limit, string why)
    {
        if (value > limit) throw Fail(key, $"must be at most {limit} ({why}), got {value}");
    }

    /// <summary>The most channels any layer may have: a 3×3 convolution of 8192 channels already holds 600 million weights.</summary>
    public const int MaxChannels = 8192;

    public void Channels(string key, int value)
    {
        Positive(key, value);
        AtMost(key, value, MaxChannels, "a 3×3 convolution of that many channels holds 600 million weights");
    }

    public void NotEmpty(string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) throw Fail(key, "must not be empty");
    }

    public void ChannelList(string key, int[]? values)
    {
        if (values is null || values.Length == 0) throw Fail(key, "must not be empty");
        for (int i = 0; i < values.Length; i++) Channels($"{key}[{i}]", values[i]);
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
