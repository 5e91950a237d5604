namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>diffusion_params</c> section: the linear noise schedule.</summary>
public sealed record DiffusionParams : IConfigSectionRecord
{
    // One property per key (ConfigBinder reads them by name): every section record has this shape on purpose.
    public required int NumTimesteps { get; init; }
    public required double BetaStart { get; init; }
    public required double BetaEnd { get; init; }

    public static string Section => "diffusion_params";

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        if (NumTimesteps < 2)
            throw check.Fail("num_timesteps",
                $"must be at least 2 (the linear schedule runs from beta_start to beta_end), got {NumTimesteps}");
        check.Positive("beta_start", BetaStart);
        if (!(BetaEnd >= BetaStart && BetaEnd < 1))
            throw check.Fail("beta_end", $"must be in [beta_start ({BetaStart}), 1), got {BetaEnd}");
    }
}
