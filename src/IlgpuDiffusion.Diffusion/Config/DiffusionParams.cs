using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>diffusion_params</c> section: the linear noise schedule.</summary>
public sealed record DiffusionParams
{
    public required int NumTimesteps { get; init; }
    public required double BetaStart { get; init; }
    public required double BetaEnd { get; init; }

    public const string Section = "diffusion_params";

    public static DiffusionParams FromJson(JsonElement section) => ConfigJson.Read<DiffusionParams>(section, Section);

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.Positive("num_timesteps", NumTimesteps);
        check.Positive("beta_start", BetaStart);
        if (!(BetaEnd >= BetaStart && BetaEnd < 1)) throw check.Fail("beta_end", $"must be in [beta_start ({BetaStart}), 1), got {BetaEnd}");
    }
}
