namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>autoencoder_params</c> section: the VQ-VAE / VAE architecture.</summary>
public sealed record AutoencoderParams : BlockLayoutParams, IConfigSectionRecord
{
    // One property per key (ConfigBinder reads them by name): every section record has this shape on purpose.
    public required int ZChannels { get; init; }
    public required int CodebookSize { get; init; }

    public static string Section => "autoencoder_params";

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.Channels("z_channels", ZChannels);
        check.Positive("codebook_size", CodebookSize);
        check.AtMost("codebook_size", CodebookSize, 1 << 20, "every latent is compared with every code");
        ValidateBlockLayout(check);
        // the encoder's MidBlocks continue from the last DownBlock and the decoder mirrors them
        check.Equal("mid_channels[0]", MidChannels[0], DownChannels[^1], "down_channels[-1]");
        check.Equal("mid_channels[-1]", MidChannels[^1], DownChannels[^1], "down_channels[-1]");
    }
}
