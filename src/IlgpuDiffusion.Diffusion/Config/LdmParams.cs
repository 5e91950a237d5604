using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>ldm_params</c> section: the noise-predicting UNet's architecture.</summary>
public sealed record LdmParams
{
    public required int[] DownChannels { get; init; }
    public required int[] MidChannels { get; init; }
    public required bool[] DownSample { get; init; }
    public required bool[] AttnDown { get; init; }
    public required int TimeEmbDim { get; init; }
    public required int NormChannels { get; init; }
    public required int NumHeads { get; init; }
    public required int ConvOutChannels { get; init; }
    public required int NumDownLayers { get; init; }
    public required int NumMidLayers { get; init; }
    public required int NumUpLayers { get; init; }

    public const string Section = "ldm_params";

    /// <summary>Reads every key of the section; a missing, mistyped or unknown key is a <see cref="ConfigException"/>. Does not validate.</summary>
    public static LdmParams Bind(ConfigSection s)
    {
        var p = new LdmParams
        {
            DownChannels = s.Ints("down_channels"),
            MidChannels = s.Ints("mid_channels"),
            DownSample = s.Bools("down_sample"),
            AttnDown = s.Bools("attn_down"),
            TimeEmbDim = s.Int("time_emb_dim"),
            NormChannels = s.Int("norm_channels"),
            NumHeads = s.Int("num_heads"),
            ConvOutChannels = s.Int("conv_out_channels"),
            NumDownLayers = s.Int("num_down_layers"),
            NumMidLayers = s.Int("num_mid_layers"),
            NumUpLayers = s.Int("num_up_layers"),
        };
        s.RejectUnknownKeys();
        return p;
    }

    /// <summary>Binds a section given as JSON (a parity manifest entry's); errors name <paramref name="source"/>.</summary>
    public static LdmParams FromJson(JsonElement section, string source = "JSON") => Bind(ConfigJson.Section(section, Section, source));

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.BlockLayout(DownChannels, MidChannels, DownSample, AttnDown, NormChannels, NumHeads, NumDownLayers, NumMidLayers, NumUpLayers);
        if (DownChannels.Length < 2) throw check.Fail("down_channels", $"must have at least 2 entries (the mid blocks end at down_channels[-2]), got {DownChannels.Length}");
        // the MidBlocks continue from the last DownBlock and hand over to the first UpBlock, whose skip has down_channels[-2]
        check.Equal("mid_channels[0]", MidChannels[0], DownChannels[^1], "down_channels[-1]");
        check.Equal("mid_channels[-1]", MidChannels[^1], DownChannels[^2], "down_channels[-2]");
        check.Positive("time_emb_dim", TimeEmbDim);
        if (TimeEmbDim % 2 != 0) throw check.Fail("time_emb_dim", $"must be even (half sines, half cosines), got {TimeEmbDim}");
        check.Positive("conv_out_channels", ConvOutChannels);
        check.Divisible("conv_out_channels", ConvOutChannels, NormChannels, NumHeads);
    }
}
