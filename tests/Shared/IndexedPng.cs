using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace IlgpuDiffusion.TestSupport;

/// <summary>Indexed-colour PNGs written byte by byte (an encoder would refuse to write the hostile ones): any palette
/// and any pixel indices, unfiltered rows, correct CRCs.</summary>
public static class IndexedPng
{
    /// <param name="palette">RGB triples: the PLTE chunk as written.</param>
    /// <param name="index">The palette index of pixel (x, y); may lie beyond the palette.</param>
    /// <param name="damage">Changes the zlib stream of the pixels before it is written (the CRCs stay right).</param>
    public static byte[] Bytes(int width, int height, int bitDepth, byte[] palette, Func<int, int, int> index,
        Func<byte[], byte[]>? damage = null)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = (byte)bitDepth;
        header[9] = 3; // indexed colour; compression, filter and interlace methods 0

        int rowBytes = (width * bitDepth + 7) / 8;
        var rows = new byte[height * (1 + rowBytes)]; // each row: filter type 0 (none), then the packed indices
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int bit = x * bitDepth, shift = 8 - bitDepth - bit % 8;
                rows[y * (1 + rowBytes) + 1 + bit / 8] |= (byte)(index(x, y) << shift);
            }
        var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) zlib.Write(rows);

        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", header), .. Chunk("PLTE", palette),
            .. Chunk("IDAT", (damage ?? (zlib => zlib))(compressed.ToArray())), .. Chunk("IEND", [])];
    }

    private static byte[] Chunk(string type, byte[] data)
    {
        byte[] typed = [.. Encoding.ASCII.GetBytes(type), .. data];
        var chunk = new byte[8 + typed.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        typed.CopyTo(chunk, 4);
        uint crc = 0xFFFFFFFF;
        foreach (byte b in typed)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320 & (0 - (crc & 1)));
        }
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(4 + typed.Length), ~crc);
        return chunk;
    }
}
