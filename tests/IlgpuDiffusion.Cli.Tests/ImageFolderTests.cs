using System.Text.Json.Nodes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>Training from a folder of images, one of which is corrupt: reported by path, and skipped or fatal per
/// dataset_params.skip_unreadable_images — never a crash.</summary>
public class ImageFolderTests
{
    private static TinyProject WithImageFolder()
    {
        var project = new TinyProject(images: 16);
        string images = Path.Combine(project.Folder, "images");
        Directory.CreateDirectory(images);
        for (int i = 0; i < 16; i++)
        {
            using var image = new Image<Rgb24>(20, 18); // not square: resized and centre-cropped to 16×16
            for (int y = 0; y < 18; y++)
                for (int x = 0; x < 20; x++) image[x, y] = new Rgb24((byte)(x * 12), (byte)(y * 14), (byte)(i * 15));
            image.SaveAsPng(Path.Combine(images, $"img{i:D2}.png"));
        }
        File.WriteAllBytes(Path.Combine(images, "broken.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5]);
        var config = JsonNode.Parse(File.ReadAllText(project.ConfigPath))!;
        config["dataset_params"]!["im_path"] = images;
        config["dataset_params"]!["im_channels"] = 3;
        File.WriteAllText(project.ConfigPath, config.ToJsonString());
        return project;
    }

    [Fact]
    public void A_corrupt_image_fails_the_run_with_its_path_by_default()
    {
        using var project = WithImageFolder();
        var result = project.Run("train-autoencoder", "--set", "train_params:disc_start=1000");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("broken.png", result.Error);
        Assert.DoesNotContain("   at ", result.Error); // a message, not a stack trace
    }

    [Fact]
    public void A_corrupt_image_is_skipped_with_a_warning_when_configured()
    {
        using var project = WithImageFolder();
        var result = project.Run("train-autoencoder",
            "--set", "train_params:disc_start=1000", "--set", "dataset_params:skip_unreadable_images=true");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("broken.png", result.Output);
        Assert.Contains("16 images", result.Output);
    }
}
