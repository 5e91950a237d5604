using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>autoencoder_params</c> section: the VQ-VAE / VAE architecture.</summary>
public sealed record AutoencoderParams
{
    public required int ZChannels { get; init; }
    public required int CodebookSize { get; init; }
    public required int[] DownChannels { get; init; }
    public required int[] MidChannels { get; init; }
    public required bool[] DownSample { get; init; }
    public required bool[] AttnDown { get; init; }
    public required int NormChannels { get; init; }
    public required int NumHeads { get; init; }
    public required int NumDownLayers { get; init; }
    public required int NumMidLayers { get; init; }
    public required int NumUpLayers { get; init; }

    public const string Section = "autoencoder_params";

    /// <summary>Reads every key of the section; a missing, mistyped or unknown key is a <see cref="ConfigException"/>. Does not validate.</summary>
    public static AutoencoderParams Bind(ConfigSection s)
    {
        var p = new AutoencoderParams
        {
            ZChannels = s.Int("z_channels"),
            CodebookSize = s.Int("codebook_size"),
            DownChannels = s.Ints("down_channels"),
            MidChannels = s.Ints("mid_channels"),
            DownSample = s.Bools("down_sample"),
            AttnDown = s.Bools("attn_down"),
            NormChannels = s.Int("norm_channels"),
            NumHeads = s.Int("num_heads"),
            NumDownLayers = s.Int("num_down_layers"),
            NumMidLayers = s.Int("num_mid_layers"),
            NumUpLayers = s.Int("num_up_layers"),
        };
        s.RejectUnknownKeys();
        return p;
    }

    /// <summary>Binds a section given as JSON (a parity manifest entry's); errors name <paramref name="source"/>.</summary>
    public static AutoencoderParams FromJson(JsonElement section, string source = "JSON") => Bind(ConfigJson.Section(section, Section, source));

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.Positive("z_channels", ZChannels);
        check.Positive("codebook_size", CodebookSize);
        check.BlockLayout(DownChannels, MidChannels, DownSample, AttnDown, NormChannels, NumHeads, NumDownLayers, NumMidLayers, NumUpLayers);
        // the encoder's MidBlocks continue from the last DownBlock and the decoder mirrors them
        check.Equal("mid_channels[0]", MidChannels[0], DownChannels[^1], "down_channels[-1]");
        check.Equal("mid_channels[-1]", MidChannels[^1], DownChannels[^1], "down_channels[-1]");
    }
}
