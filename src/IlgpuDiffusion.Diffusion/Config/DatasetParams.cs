using System.Text.Json;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>The <c>dataset_params</c> section.</summary>
public sealed record DatasetParams
{
    public required int ImChannels { get; init; }
    public required int ImSize { get; init; }
    public required string Name { get; init; }
    public required string ImPath { get; init; }

    public const string Section = "dataset_params";

    public static DatasetParams FromJson(JsonElement section) => ConfigJson.Read<DatasetParams>(section, Section);

    public void Validate()
    {
        var check = new ConfigCheck(Section);
        check.Positive("im_channels", ImChannels);
        check.Positive("im_size", ImSize);
        check.NotEmpty("name", Name);
        check.NotEmpty("im_path", ImPath);
    }
}
