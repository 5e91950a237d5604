namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The block layout the autoencoder and the UNet share: channels per DownBlock and MidBlock,
/// where to down-sample and attend, GroupNorm groups, attention heads and layers per block.</summary>
public abstract record BlockLayoutParams
{
    public required int[] DownChannels { get; init; }
    public required int[] MidChannels { get; init; }
    public required bool[] DownSample { get; init; }
    public required bool[] AttnDown { get; init; }
    public required int NormChannels { get; init; }
    public required int NumHeads { get; init; }
    public required int NumDownLayers { get; init; }
    public required int NumMidLayers { get; init; }
    public required int NumUpLayers { get; init; }

    private const int MaxLayersPerBlock = 64;

    /// <summary>Non-empty positive channel lists, one down_sample and attn_down entry per DownBlock, positive
    /// layer counts, channels divisible by the GroupNorm groups and the heads.</summary>
    private protected void ValidateBlockLayout(ConfigCheck check)
    {
        check.ChannelList("down_channels", DownChannels);
        check.ChannelList("mid_channels", MidChannels);
        check.Length("down_sample", DownSample, DownChannels.Length - 1, "one per pair of down_channels");
        check.Length("attn_down", AttnDown, DownChannels.Length - 1, "one per pair of down_channels");
        check.Positive("norm_channels", NormChannels);
        check.Positive("num_heads", NumHeads);
        foreach (var (key, layers) in new[] { ("num_down_layers", NumDownLayers), ("num_mid_layers", NumMidLayers),
                     ("num_up_layers", NumUpLayers) })
        {
            check.Positive(key, layers);
            check.AtMost(key, layers, MaxLayersPerBlock, "layers per block");
        }
        check.Divisible("down_channels", DownChannels, NormChannels, NumHeads);
        check.Divisible("mid_channels", MidChannels, NormChannels, NumHeads);
    }
}
