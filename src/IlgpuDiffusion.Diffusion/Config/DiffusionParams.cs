using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>diffusion_params</c> section: the linear noise schedule.</summary>
public sealed record DiffusionParams
{
    public required int NumTimesteps { get; init; }
    public required double BetaStart { get; init; }
    public required double BetaEnd { get; init; }

    public const string Section = "diffusion_params";

    /// <summary>Reads every key of the section; a missing, mistyped or unknown key is a <see cref="ConfigException"/>. Does not validate.</summary>
    public static DiffusionParams Bind(ConfigSection s)
    {
        var p = new DiffusionParams
        {
            NumTimesteps = s.Int("num_timesteps"),
            BetaStart = s.Double("beta_start"),
            BetaEnd = s.Double("beta_end"),
        };
        s.RejectUnknownKeys();
        return p;
    }

    /// <summary>Binds a section given as JSON (a parity manifest entry's); errors name <paramref name="source"/>.</summary>
    public static DiffusionParams FromJson(JsonElement section, string source = "JSON") => Bind(ConfigJson.Section(section, Section, source));

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.Positive("num_timesteps", NumTimesteps);
        check.Positive("beta_start", BetaStart);
        if (!(BetaEnd >= BetaStart && BetaEnd < 1)) throw check.Fail("beta_end", $"must be in [beta_start ({BetaStart}), 1), got {BetaEnd}");
    }
}
