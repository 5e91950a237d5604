using System.Globalization;

namespace IlgpuDiffusion.Diffusion.Imaging;

/// <summary>A 5×7 pixel font (the classic HD44780 shapes) for plot labels: digits, upper-case
/// letters (lower case is drawn upper case) and the symbols numbers and names need. Each glyph is
/// seven rows of five bits, high bit on the left; an unknown character draws as '?'.</summary>
internal static class BitmapFont
{
    public const int GlyphWidth = 5;
    public const int GlyphHeight = 7;
    public const int Advance = GlyphWidth + 1;

    private const string Table =
        "0 0E11131519110E|1 040C040404040E|2 0E11010204081F|3 1F02040201110E|4 02060A121F0202|5 1F101E0101110E|" +
        "6 0608101E11110E|7 1F010204080808|8 0E11110E11110E|9 0E11110F01020C|A 0E1111111F1111|B 1E11111E11111E|" +
        "C 0E11101010110E|D 1C12111111121C|E 1F10101E10101F|F 1F10101E101010|G 0E11101711110F|H 1111111F111111|" +
        "I 0E04040404040E|J 0702020202120C|K 11121418141211|L 1010101010101F|M 111B1515111111|N 11111915131111|" +
        "O 0E11111111110E|P 1E11111E101010|Q 0E11111115120D|R 1E11111E141211|S 0F10100E01011E|T 1F040404040404|" +
        "U 1111111111110E|V 11111111110A04|W 1111111515150A|X 11110A040A1111|Y 1111110A040404|Z 1F01020408101F|" +
        ". 00000000000C0C|- 0000001F000000|+ 0004041F040400|: 000C0C000C0C00|/ 00010204081000|_ 0000000000001F|" +
        "( 02040808080402|) 08040202020408|= 00001F001F0000|, 000000000C0408|% 18190204081303|? 0E110102040004|" +
        "  00000000000000";

    private static readonly Dictionary<char, byte[]> Glyphs = Table.Split('|').ToDictionary(
        entry => entry[0],
        entry => Convert.FromHexString(entry.AsSpan(2)));

    public static int Width(string text, int scale) => Math.Max(0, text.Length * Advance - 1) * scale;

    /// <summary>The glyph rows of <paramref name="c"/>.</summary>
    public static byte[] Glyph(char c) =>
        Glyphs.TryGetValue(char.ToUpper(c, CultureInfo.InvariantCulture), out var rows) ? rows : Glyphs['?'];
}
