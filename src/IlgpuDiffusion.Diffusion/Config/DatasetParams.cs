namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>dataset_params</c> section.</summary>
public sealed record DatasetParams : IConfigSectionRecord
{
    // One property per key (ConfigBinder reads them by name): every section record has this shape on purpose.
    public required int ImChannels { get; init; }
    public required int ImSize { get; init; }
    public required string Name { get; init; }

    /// <summary>The data set's folder (or file), kept as written; a relative path is resolved against the
    /// current working directory when the data set is opened, as the original does (not against the config file's folder).</summary>
    public required string ImPath { get; init; }

    /// <summary>Optional <c>max_images</c>: use only the first N images of the data set (small, quick runs); 0 = all.</summary>
    public int MaxImages { get; init; }

    /// <summary>Optional <c>skip_unreadable_images</c>: false (default) = a corrupt image fails the run;
    /// true = it is skipped with a warning.</summary>
    public bool SkipUnreadableImages { get; init; }

    /// <summary>Optional <c>mask_path</c>: the folder of masks for an <c>image</c> condition, one index image per training
    /// image with the same file name stem (pixel value k ≥ 1 = channel k − 1, as the reference's CelebAMask-HQ masks).</summary>
    public string MaskPath { get; init; } = "";

    /// <summary>Optional <c>text_context_path</c>: the safetensors file of precomputed text contexts for a <c>text</c>
    /// condition, one (tokens, text_embed_dim) tensor per training image keyed by its file name, and the empty
    /// prompt's under <c>__empty_prompt__</c> (see the README).</summary>
    public string TextContextPath { get; init; } = "";

    public static string Section => "dataset_params";

    private const int MaxImageSize = 8192;

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        if (ImChannels is not (1 or 3)) throw check.Fail("im_channels", $"must be 1 (grey) or 3 (RGB), got {ImChannels}");
        check.Positive("im_size", ImSize);
        check.AtMost("im_size", ImSize, MaxImageSize, "images are held as float32, one batch at a time");
        check.NotEmpty("name", Name);
        check.NotEmpty("im_path", ImPath);
        check.NonNegative("max_images", MaxImages);
    }
}
