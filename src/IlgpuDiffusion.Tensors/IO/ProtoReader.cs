using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace IlgpuDiffusion.Tensors.IO;

/// <summary>Reads protocol-buffer wire format field by field; the caller knows the schema.
/// <paramref name="context"/> names the file and message in errors.</summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data, string context)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _position;

    /// <summary>Moves to the next field; false at the end of the message.</summary>
    public bool Next(out int field, out WireType wireType)
    {
        if (_position == _data.Length)
        {
            field = 0;
            wireType = default;
            return false;
        }
        ulong key = Varint();
        field = (int)(key >> 3);
        wireType = (WireType)(key & 7);
        if (field == 0 || wireType is not (WireType.Varint or WireType.Fixed64 or WireType.LengthDelimited or WireType.Fixed32))
        {
            throw Error($"invalid field key {key}");
        }
        return true;
    }

    /// <summary>Moves to the next embedded message in field <paramref name="wanted"/>, skipping other fields;
    /// false at the end of the message.</summary>
    public bool NextMessage(int wanted, out ProtoReader message)
    {
        while (Next(out int field, out var wire))
        {
            if (field == wanted)
            {
                message = new ProtoReader(Bytes(wire), context);
                return true;
            }
            Skip(wire);
        }
        message = default;
        return false;
    }

    private ulong Varint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_position == _data.Length) throw Error("truncated varint");
            byte b = _data[_position++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }
        throw Error("varint longer than 10 bytes");
    }

    /// <summary>A varint field: int32, int64 or an enum.</summary>
    public long Int64(WireType wireType)
    {
        Expect(wireType, WireType.Varint);
        return (long)Varint();
    }

    /// <summary>A length-delimited field: bytes or an embedded message.</summary>
    public ReadOnlySpan<byte> Bytes(WireType wireType)
    {
        Expect(wireType, WireType.LengthDelimited);
        return LengthDelimited();
    }

    public string String(WireType wireType) => Encoding.UTF8.GetString(Bytes(wireType));

    public float Float(WireType wireType)
    {
        Expect(wireType, WireType.Fixed32);
        return Float();
    }

    private ReadOnlySpan<byte> LengthDelimited()
    {
        ulong length = Varint();
        if (length > (ulong)(_data.Length - _position)) throw Error($"field of {length} bytes runs past the end");
        var bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    private float Float() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));

    public void Skip(WireType wireType)
    {
        switch (wireType)
        {
            case WireType.Varint: Varint(); break;
            case WireType.Fixed64: Take(8); break;
            case WireType.LengthDelimited: LengthDelimited(); break;
            case WireType.Fixed32: Take(4); break;
        }
    }

    /// <summary>Appends a repeated float field, packed (one length-delimited run) or not.</summary>
    public void Floats(WireType wireType, List<float> values)
    {
        if (wireType == WireType.Fixed32)
        {
            values.Add(Float());
            return;
        }
        Expect(wireType, WireType.LengthDelimited);
        var packed = LengthDelimited();
        if (packed.Length % 4 != 0) throw Error($"packed floats of {packed.Length} bytes");
        // Weights arrive as one packed run of millions of floats: copy it in bulk.
        int start = values.Count;
        CollectionsMarshal.SetCount(values, start + packed.Length / 4);
        var target = CollectionsMarshal.AsSpan(values)[start..];
        MemoryMarshal.Cast<byte, float>(packed).CopyTo(target);
        if (!BitConverter.IsLittleEndian)
        {
            var bits = MemoryMarshal.Cast<float, uint>(target);
            BinaryPrimitives.ReverseEndianness(bits, bits);
        }
    }

    /// <summary>Appends a repeated double field, packed or not.</summary>
    public void Doubles(WireType wireType, List<double> values)
    {
        if (wireType == WireType.Fixed64)
        {
            values.Add(BinaryPrimitives.ReadDoubleLittleEndian(Take(8)));
            return;
        }
        Expect(wireType, WireType.LengthDelimited);
        var packed = LengthDelimited();
        if (packed.Length % 8 != 0) throw Error($"packed doubles of {packed.Length} bytes");
        for (int i = 0; i < packed.Length; i += 8) values.Add(BinaryPrimitives.ReadDoubleLittleEndian(packed[i..]));
    }

    /// <summary>Appends a repeated varint field (int32/int64), packed or not.</summary>
    public void Int64s(WireType wireType, List<long> values)
    {
        if (wireType == WireType.Varint)
        {
            values.Add((long)Varint());
            return;
        }
        Expect(wireType, WireType.LengthDelimited);
        var packed = new ProtoReader(LengthDelimited(), context);
        while (packed._position < packed._data.Length) values.Add((long)packed.Varint());
    }

    private readonly void Expect(WireType actual, WireType expected)
    {
        if (actual != expected) throw Error($"wire type {actual} where the schema has {expected}");
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _data.Length - _position) throw Error("truncated fixed-size field");
        var bytes = _data.Slice(_position, count);
        _position += count;
        return bytes;
    }

    private readonly InvalidDataException Error(string message) =>
        new($"{context}: {message} at byte {_position} of the message");
}

/// <summary>Protocol-buffer wire types (groups, 3 and 4, are obsolete and not supported).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}
