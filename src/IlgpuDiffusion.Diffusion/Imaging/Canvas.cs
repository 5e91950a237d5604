using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Imaging;

/// <summary>An RGB pixel buffer with the few drawing operations a plot needs; drawing outside the
/// clip rectangle (the whole canvas unless set) is ignored.</summary>
internal sealed class Canvas
{
    private readonly Rgb24[] _pixels;
    private (int Left, int Top, int Right, int Bottom) _clip;

    public Canvas(int width, int height, Rgb24 background)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        Width = width;
        Height = height;
        _pixels = new Rgb24[width * height];
        Array.Fill(_pixels, background);
        ResetClip();
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Limits drawing to the inclusive rectangle.</summary>
    public void Clip(int left, int top, int right, int bottom) => _clip = (left, top, right, bottom);

    public void ResetClip() => _clip = (0, 0, Width - 1, Height - 1);

    public void Set(int x, int y, Rgb24 color)
    {
        if (x >= _clip.Left && x <= _clip.Right && y >= _clip.Top && y <= _clip.Bottom) _pixels[y * Width + x] = color;
    }

    public void FillRectangle(int left, int top, int right, int bottom, Rgb24 color)
    {
        for (int y = top; y <= bottom; y++)
            for (int x = left; x <= right; x++) Set(x, y, color);
    }

    public void Rectangle(int left, int top, int right, int bottom, Rgb24 color)
    {
        Line(left, top, right, top, color);
        Line(left, bottom, right, bottom, color);
        Line(left, top, left, bottom, color);
        Line(right, top, right, bottom, color);
    }

    /// <summary>Bresenham's line; <paramref name="thickness"/> widens it down and to the right.</summary>
    public void Line(int x0, int y0, int x1, int y1, Rgb24 color, int thickness = 1)
    {
        int dx = Math.Abs(x1 - x0), dy = -Math.Abs(y1 - y0);
        int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
        for (int error = dx + dy; ;)
        {
            FillRectangle(x0, y0, x0 + thickness - 1, y0 + thickness - 1, color);
            if (x0 == x1 && y0 == y1) return;
            int twice = 2 * error;
            if (twice >= dy) { error += dy; x0 += sx; }
            if (twice <= dx) { error += dx; y0 += sy; }
        }
    }

    /// <summary>Text in the built-in 5×7 font, each font pixel <paramref name="scale"/>² pixels;
    /// (<paramref name="x"/>, <paramref name="y"/>) is the top left.</summary>
    public void Text(int x, int y, string text, Rgb24 color, int scale = 1)
    {
        foreach (char c in text)
        {
            var rows = BitmapFont.Glyph(c);
            for (int row = 0; row < BitmapFont.GlyphHeight; row++)
            {
                for (int column = 0; column < BitmapFont.GlyphWidth; column++)
                {
                    if ((rows[row] >> (BitmapFont.GlyphWidth - 1 - column) & 1) == 0) continue;
                    int px = x + column * scale, py = y + row * scale;
                    FillRectangle(px, py, px + scale - 1, py + scale - 1, color);
                }
            }
            x += BitmapFont.Advance * scale;
        }
    }

    public void SavePng(string path)
    {
        using var image = Image.LoadPixelData<Rgb24>(_pixels, Width, Height);
        AtomicFile.Write(path, stream => image.Save(stream, new PngEncoder()));
    }
}
