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

    public static AutoencoderParams FromJson(JsonElement section) => ConfigJson.Read<AutoencoderParams>(section, Section);

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
