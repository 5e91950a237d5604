using System.Buffers.Binary;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>
/// Decodes an image file to RGB, refusing an indexed-colour PNG whose pixels use indices beyond its palette: ImageSharp
/// 2.1 paints those with the palette's last colour without a word. Such a PNG is decoded with its palette extended to
/// every index its bit depth can hold, each new entry a colour the palette lacks, so a pixel of that colour is an index
/// out of range; the pixels in range decode exactly as before.
/// </summary>
internal static class ImageDecoding
{
    private const int HeaderEnd = 33; // signature (8), IHDR length and type (8), its 13 bytes of data, its CRC (4)
    private const int BitDepthOffset = 24, ColourTypeOffset = 25;
    private const byte IndexedColour = 3;

    private static ReadOnlySpan<byte> PngStart => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52];

    /// <exception cref="InvalidDataException">Palette indices out of range, or a second palette (PLTE) chunk.</exception>
    public static Image<Rgb24> LoadRgb(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return bytes.Length >= HeaderEnd && bytes.AsSpan().StartsWith(PngStart) && bytes[ColourTypeOffset] == IndexedColour
            ? LoadIndexed(bytes, bytes[BitDepthOffset])
            : Image.Load<Rgb24>(bytes);
    }

    private static Image<Rgb24> LoadIndexed(byte[] png, int bitDepth)
    {
        var palettes = Chunks(png).Where(c => c.Type == "PLTE").ToList();
        if (palettes.Count > 1) throw new InvalidDataException($"{palettes.Count} palette (PLTE) chunks, where a PNG has one");
        // a palette that is missing, malformed or as large as the bit depth allows is left to the decoder's own checks
        if (palettes.Count == 0 || bitDepth is not (1 or 2 or 4 or 8)) return Image.Load<Rgb24>(png);
        var (start, length, _) = palettes[0];
        int colours = length / 3, indices = 1 << bitDepth;
        if (length % 3 != 0 || colours >= indices) return Image.Load<Rgb24>(png);

        var palette = png.AsSpan(start + 8, length);
        var outside = Outside(palette);
        var extended = new byte[3 * indices];
        palette.CopyTo(extended);
        for (int i = colours; i < indices; i++)
            (extended[3 * i], extended[3 * i + 1], extended[3 * i + 2]) = (outside.R, outside.G, outside.B);
        byte[] patched = [.. png.AsSpan(0, start), .. Chunk("PLTE"u8, extended), .. png.AsSpan(start + 12 + length)];

        var image = Image.Load<Rgb24>(patched);
        var pixels = new Rgb24[(long)image.Width * image.Height];
        image.CopyPixelDataTo(pixels);
        long beyond = pixels.LongCount(p => p == outside);
        if (beyond == 0) return image;
        image.Dispose();
        throw new InvalidDataException($"{beyond} of its {pixels.Length} pixels have palette indices beyond its {colours} colours "
            + "(an indexed PNG whose PLTE chunk is too short for its pixels)");
    }

    /// <summary>The first colour, counting up from black, that <paramref name="palette"/> (RGB triples) lacks.</summary>
    private static Rgb24 Outside(ReadOnlySpan<byte> palette)
    {
        var used = new HashSet<int>();
        for (int i = 0; i + 2 < palette.Length; i += 3) used.Add(palette[i] << 16 | palette[i + 1] << 8 | palette[i + 2]);
        int colour = 0;
        while (used.Contains(colour)) colour++;
        return new Rgb24((byte)(colour >> 16), (byte)(colour >> 8), (byte)colour);
    }

    /// <summary>The chunks after the signature, as (offset of the chunk's length field, data length, type), up to the
    /// first that runs past the end of the file (the decoder reports that one).</summary>
    private static IEnumerable<(int Start, int Length, string Type)> Chunks(byte[] png)
    {
        long start = 8;
        while (start + 12 <= png.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan((int)start));
            if (start + 12 + length > png.Length) yield break;
            yield return ((int)start, (int)length, System.Text.Encoding.ASCII.GetString(png, (int)start + 4, 4));
            start += 12 + length;
        }
    }

    /// <summary>A PNG chunk: length, type, data, and the CRC-32 of type and data.</summary>
    private static byte[] Chunk(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        type.CopyTo(chunk.AsSpan(4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    /// <summary>The CRC-32 of PNG (and zip): polynomial 0xEDB88320, reflected, inverted.</summary>
    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
