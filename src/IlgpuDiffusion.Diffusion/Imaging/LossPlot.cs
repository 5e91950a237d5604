using System.Globalization;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Imaging;

/// <summary>Loss curves as a PNG line plot: axes with ticks and grid, one coloured line per series,
/// a legend, the title; y linear or logarithmic. Drawn pixel by pixel with a built-in font, so it
/// needs no drawing library.</summary>
public static class LossPlot
{
    private const int Left = 64, Right = 16, Top = 28, Bottom = 36, TickLength = 4;

    private static readonly Rgb24 White = new(255, 255, 255), Black = new(0, 0, 0),
        GridColor = new(225, 225, 225), TextColor = new(40, 40, 40);

    // matplotlib's default cycle: distinct, and familiar from the reference's plots.
    private static readonly Rgb24[] Palette =
    [
        new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189),
        new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207),
    ];

    /// <summary>Writes the plot atomically. Points that are not finite (or not positive, on a log
    /// axis) are left out; a series with none left still appears in the legend.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, IReadOnlyList<(long step, double value)>> series,
        string title, bool logScale = false, int width = 800, int height = 480)
    {
        ArgumentNullException.ThrowIfNull(series);
        ArgumentNullException.ThrowIfNull(title);
        if (width < Left + Right + 100 || height < Top + Bottom + 100)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"{width}×{height} is too small for a plot");
        }
        var points = series.ToDictionary(s => s.Key, s => s.Value
            .Where(p => double.IsFinite(p.value) && (!logScale || p.value > 0))
            .Select(p => (X: (double)p.step, Y: logScale ? Math.Log10(p.value) : p.value))
            .ToArray());
        var all = points.Values.SelectMany(p => p).ToArray();
        var (xMin, xMax) = Range(all.Select(p => p.X), 0, 1);
        var (yMin, yMax) = Range(all.Select(p => p.Y), logScale ? -1 : 0, logScale ? 0 : 1);
        var xTicks = Ticks(xMin, xMax, integers: true);
        var yTicks = logScale ? DecadeTicks(yMin, yMax) : Ticks(yMin, yMax, integers: false);
        (xMin, xMax) = (Math.Min(xMin, xTicks[0]), Math.Max(xMax, xTicks[^1]));
        (yMin, yMax) = (Math.Min(yMin, yTicks[0]), Math.Max(yMax, yTicks[^1]));

        var canvas = new Canvas(width, height, White);
        int plotLeft = Left, plotRight = width - Right, plotTop = Top, plotBottom = height - Bottom;
        int ToX(double x) => plotLeft + (int)Math.Round((x - xMin) / (xMax - xMin) * (plotRight - plotLeft));
        int ToY(double y) => plotBottom - (int)Math.Round((y - yMin) / (yMax - yMin) * (plotBottom - plotTop));

        foreach (var x in xTicks)
        {
            int px = ToX(x);
            canvas.Line(px, plotTop, px, plotBottom, GridColor);
            canvas.Line(px, plotBottom, px, plotBottom + TickLength, Black);
            var label = FormatTick(x);
            canvas.Text(px - BitmapFont.Width(label, 1) / 2, plotBottom + TickLength + 3, label, TextColor);
        }
        foreach (var y in yTicks)
        {
            int py = ToY(y);
            canvas.Line(plotLeft, py, plotRight, py, GridColor);
            canvas.Line(plotLeft - TickLength, py, plotLeft, py, Black);
            var label = FormatTick(logScale ? Math.Pow(10, y) : y);
            canvas.Text(plotLeft - TickLength - 3 - BitmapFont.Width(label, 1), py - BitmapFont.GlyphHeight / 2, label, TextColor);
        }
        canvas.Rectangle(plotLeft, plotTop, plotRight, plotBottom, Black);
        canvas.Text((plotLeft + plotRight - BitmapFont.Width("step", 1)) / 2, height - BitmapFont.GlyphHeight - 4, "step", TextColor);
        canvas.Text((width - BitmapFont.Width(title, 2)) / 2, (Top - 2 * BitmapFont.GlyphHeight) / 2, title, Black, scale: 2);

        canvas.Clip(plotLeft + 1, plotTop + 1, plotRight - 1, plotBottom - 1);
        int colour = 0;
        foreach (var line in points.Values)
        {
            var color = Palette[colour++ % Palette.Length];
            for (int i = 0; i < line.Length; i++)
            {
                int x = ToX(line[i].X), y = ToY(line[i].Y);
                if (i == 0) canvas.Line(x, y, x, y, color, thickness: 2);
                else canvas.Line(ToX(line[i - 1].X), ToY(line[i - 1].Y), x, y, color, thickness: 2);
            }
        }
        DrawLegend(canvas, points.Keys.ToArray(), plotRight);
        canvas.SavePng(path);
    }

    /// <summary>Top right, inside the plot: a swatch and the name for each series.</summary>
    private static void DrawLegend(Canvas canvas, string[] names, int plotRight)
    {
        if (names.Length == 0) return;
        const int swatch = 14, rowHeight = 12, margin = 6;
        int width = swatch + 4 + names.Max(n => BitmapFont.Width(n, 1)) + 2 * margin;
        int right = plotRight - margin, left = right - width, top = Top + margin;
        int bottom = top + names.Length * rowHeight + margin;
        canvas.FillRectangle(left, top, right, bottom, White);
        canvas.Rectangle(left, top, right, bottom, GridColor);
        for (int i = 0; i < names.Length; i++)
        {
            int y = top + margin + i * rowHeight;
            canvas.Line(left + margin, y + 3, left + margin + swatch, y + 3, Palette[i % Palette.Length], thickness: 2);
            canvas.Text(left + margin + swatch + 4, y, names[i], TextColor);
        }
    }

    /// <summary>The data range, widened when empty or a single value so that it has a width.</summary>
    private static (double Min, double Max) Range(IEnumerable<double> values, double emptyMin, double emptyMax)
    {
        var list = values.ToList();
        if (list.Count == 0) return (emptyMin, emptyMax);
        double min = list.Min(), max = list.Max();
        if (max > min) return (min, max);
        double half = Math.Max(Math.Abs(min) * 0.05, 0.5);
        return (min - half, max + half);
    }

    /// <summary>About five ticks at 1, 2 or 5 × 10^k spacing that cover [min, max].</summary>
    private static double[] Ticks(double min, double max, bool integers)
    {
        double rough = (max - min) / 5;
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        double step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= rough);
        if (integers) step = Math.Max(1, Math.Round(step));
        double first = Math.Floor(min / step) * step, last = Math.Ceiling(max / step) * step;
        int count = (int)Math.Round((last - first) / step) + 1;
        return Enumerable.Range(0, count).Select(i => first + i * step).ToArray();
    }

    /// <summary>Whole decades (log10 values) covering [min, max].</summary>
    private static double[] DecadeTicks(double min, double max)
    {
        int first = (int)Math.Floor(min), last = Math.Max((int)Math.Ceiling(max), first + 1);
        return Enumerable.Range(first, last - first + 1).Select(d => (double)d).ToArray();
    }

    private static string FormatTick(double value) =>
        Math.Abs(value) < 1e-12 ? "0" : value.ToString("G4", CultureInfo.InvariantCulture);
}
