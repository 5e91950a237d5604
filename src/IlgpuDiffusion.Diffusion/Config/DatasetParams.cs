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

    public static string Section => "dataset_params";

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.Positive("im_channels", ImChannels);
        check.Positive("im_size", ImSize);
        check.NotEmpty("name", Name);
        check.NotEmpty("im_path", ImPath);
        check.NonNegative("max_images", MaxImages);
    }
}
