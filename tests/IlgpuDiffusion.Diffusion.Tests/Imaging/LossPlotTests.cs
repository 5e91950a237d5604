using IlgpuDiffusion.Diffusion.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Tests.Imaging;

public class LossPlotTests
{
    private static IReadOnlyList<(long step, double value)> Curve(double start, double rate, int points) =>
        Enumerable.Range(0, points).Select(i => ((long)i * 10, start * Math.Exp(-rate * i) + 0.01)).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Plot_has_the_size_asked_for_and_shows_the_curves(bool logScale)
    {
        using var folder = new TempFolder();
        var path = folder.File("losses.png");
        var series = new Dictionary<string, IReadOnlyList<(long step, double value)>>
        {
            ["recon_mse"] = Curve(0.7, 0.02, 300),
            ["codebook"] = Curve(0.2, 0.01, 300),
            ["empty"] = [],
        };

        LossPlot.Save(path, series, "autoencoder losses", logScale, width: 640, height: 400);

        using var image = Image.Load<Rgb24>(path);
        Assert.Equal((640, 400), (image.Width, image.Height));
        var colours = new Dictionary<Rgb24, int>();
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
                foreach (var pixel in rows.GetRowSpan(y)) colours[pixel] = colours.GetValueOrDefault(pixel) + 1;
        });
        Assert.True(colours.GetValueOrDefault(new Rgb24(31, 119, 180)) > 300, "first series (blue) is missing");
        Assert.True(colours.GetValueOrDefault(new Rgb24(255, 127, 14)) > 300, "second series (orange) is missing");
        Assert.True(colours.GetValueOrDefault(new Rgb24(0, 0, 0)) > 1000, "axes and title are missing");
    }

    [Fact]
    public void Degenerate_series_still_give_a_plot()
    {
        using var folder = new TempFolder();
        var path = folder.File("flat.png");
        var series = new Dictionary<string, IReadOnlyList<(long step, double value)>>
        {
            ["one point"] = [(5, 0.5)],
            ["not finite"] = [(1, double.NaN), (2, double.PositiveInfinity), (3, -1)],
        };

        LossPlot.Save(path, series, "edge cases", logScale: true);
        LossPlot.Save(folder.File("none.png"), new Dictionary<string, IReadOnlyList<(long step, double value)>>(), "nothing");

        using var image = Image.Load<Rgb24>(path);
        Assert.Equal((800, 480), (image.Width, image.Height));
    }
}
