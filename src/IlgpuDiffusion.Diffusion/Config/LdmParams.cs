namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>ldm_params</c> section: the noise-predicting UNet's architecture.</summary>
public sealed record LdmParams : BlockLayoutParams, IConfigSectionRecord
{
    // One property per key (ConfigBinder reads them by name): every section record has this shape on purpose.
    public required int TimeEmbDim { get; init; }
    public required int ConvOutChannels { get; init; }

    /// <summary>Optional <c>condition_config</c> (the reference's conditional UNet); null = unconditional.</summary>
    public ConditionConfig? ConditionConfig { get; init; }

    public static string Section => "ldm_params";

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        ValidateBlockLayout(check);
        if (DownChannels.Length < 2)
            throw check.Fail("down_channels",
                $"must have at least 2 entries (the mid blocks end at down_channels[-2]), got {DownChannels.Length}");
        // the MidBlocks continue from the last DownBlock and hand over to the first UpBlock, whose skip has down_channels[-2]
        check.Equal("mid_channels[0]", MidChannels[0], DownChannels[^1], "down_channels[-1]");
        check.Equal("mid_channels[-1]", MidChannels[^1], DownChannels[^2], "down_channels[-2]");
        check.Channels("time_emb_dim", TimeEmbDim);
        if (TimeEmbDim % 2 != 0) throw check.Fail("time_emb_dim", $"must be even (half sines, half cosines), got {TimeEmbDim}");
        check.Channels("conv_out_channels", ConvOutChannels);
        check.Divisible("conv_out_channels", ConvOutChannels, NormChannels, NumHeads);
        ConditionConfig?.Validate(Section);
    }
}
