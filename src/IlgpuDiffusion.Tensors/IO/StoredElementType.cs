using System.Buffers.Binary;

namespace IlgpuDiffusion.Tensors.IO;

/// <summary>Element types found in weight files. The engine computes in float32 and int32, so every
/// floating type is converted to float32 and every integer type to int32 when read.</summary>
internal enum StoredElementType
{
    Float32,
    Float64,
    Float16,
    BFloat16,
    Int64,
    Int32,
}

internal static class StoredElements
{
    public static int SizeInBytes(this StoredElementType type) => type switch
    {
        StoredElementType.Float64 or StoredElementType.Int64 => 8,
        StoredElementType.Float32 or StoredElementType.Int32 => 4,
        StoredElementType.Float16 or StoredElementType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown stored element type"),
    };

    public static bool IsInteger(this StoredElementType type) =>
        type is StoredElementType.Int64 or StoredElementType.Int32;

    /// <summary>The most bytes one tensor's data may span: what one .NET array holds.</summary>
    public static long MaxTensorBytes => Array.MaxLength;

    /// <summary>Bytes that <paramref name="shape"/> of <paramref name="type"/> spans, in checked 64-bit arithmetic;
    /// a shape whose size overflows or exceeds <see cref="MaxTensorBytes"/> is an <see cref="InvalidDataException"/>
    /// naming <paramref name="context"/>.</summary>
    public static long CheckedByteCount(StoredElementType type, IReadOnlyList<long> shape, string context)
    {
        long bytes = type.SizeInBytes();
        foreach (long dim in shape)
        {
            if (dim < 0) throw new InvalidDataException($"{context}: negative dimension in shape [{string.Join(", ", shape)}]");
            // dividing first keeps the product from overflowing before it is compared with the limit
            if (dim > 0 && bytes > MaxTensorBytes / dim)
            {
                throw new InvalidDataException(
                    $"{context}: shape [{string.Join(", ", shape)}] of {type} spans more than {MaxTensorBytes} bytes, "
                    + "the most one tensor may hold");
            }
            bytes *= dim;
        }
        return bytes;
    }

    /// <summary>Builds a tensor of the given shape from little-endian <paramref name="storage"/>:
    /// element (i0, i1, …) is storage element <c>offset + Σ i_d·strides[d]</c>, so views with any
    /// strides are materialised row-major. <paramref name="context"/> names the file and entry in
    /// errors. A view with more elements than its storage (zero or overlapping strides) is refused:
    /// a tiny file must not expand into gigabytes.</summary>
    public static HostTensor Decode(StoredElementType type, ReadOnlySpan<byte> storage, int[] shape,
        long offset, IReadOnlyList<long> strides, string context)
    {
        long count = CheckedByteCount(type, shape.Select(d => (long)d).ToArray(), context) / type.SizeInBytes();
        if (strides.Count != shape.Length)
        {
            throw new InvalidDataException($"{context}: {strides.Count} strides for {shape.Length} dimensions");
        }
        long storageElements = storage.Length / type.SizeInBytes();
        string layout = $"shape [{string.Join(", ", shape)}], offset {offset} and strides [{string.Join(", ", strides)}]";
        if (count > storageElements)
        {
            throw new InvalidDataException(
                $"{context}: {layout} make {count} elements from a storage holding {storageElements} (zero or overlapping strides)");
        }
        if (count > 0)
        {
            // every product is below 2^31 · 2^63 only in 128 bits, so the reach is computed there
            Int128 lowest = offset, highest = offset;
            for (int d = 0; d < shape.Length; d++)
            {
                Int128 reach = (Int128)(shape[d] - 1) * strides[d];
                if (reach < 0) lowest += reach; else highest += reach;
            }
            if (lowest < 0 || highest >= storageElements)
            {
                throw new InvalidDataException(
                    $"{context}: {layout} reach element {(lowest < 0 ? lowest : highest)} of a storage holding {storageElements}");
            }
        }
        long[]? sourceIndices = IsRowMajor(shape, strides) ? null : GatherIndices(shape, offset, strides);

        if (type.IsInteger())
        {
            var ints = new int[count];
            for (long i = 0; i < count; i++)
            {
                ints[i] = ReadInt(type, storage, sourceIndices?[i] ?? offset + i, context);
            }
            return HostTensor.FromInts(shape, ints);
        }
        var floats = new float[count];
        for (long i = 0; i < count; i++)
        {
            floats[i] = ReadFloat(type, storage, sourceIndices?[i] ?? offset + i);
        }
        return HostTensor.FromFloats(shape, floats);
    }

    /// <summary>Decodes a contiguous run of elements starting at element 0.</summary>
    public static HostTensor Decode(StoredElementType type, ReadOnlySpan<byte> storage, int[] shape, string context) =>
        Decode(type, storage, shape, 0, RowMajorStrides(shape), context);

    public static long[] RowMajorStrides(IReadOnlyList<int> shape)
    {
        var strides = new long[shape.Count];
        long stride = 1;
        for (int d = shape.Count - 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride *= shape[d];
        }
        return strides;
    }

    // Dimensions of size 1 may carry any stride (PyTorch leaves them arbitrary), so they are skipped.
    private static bool IsRowMajor(int[] shape, IReadOnlyList<long> strides)
    {
        long expected = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] != 1 && strides[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    private static long[] GatherIndices(int[] shape, long offset, IReadOnlyList<long> strides)
    {
        var indices = new long[HostTensor.CheckedElementCount(shape)];
        var position = new int[shape.Length];
        long source = offset;
        for (long i = 0; i < indices.Length; i++)
        {
            indices[i] = source;
            // Advance the multi-index like an odometer, keeping the source index in step.
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                source += strides[d];
                if (++position[d] < shape[d]) break;
                source -= strides[d] * shape[d];
                position[d] = 0;
            }
        }
        return indices;
    }

    private static float ReadFloat(StoredElementType type, ReadOnlySpan<byte> storage, long index) => type switch
    {
        StoredElementType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(storage[checked((int)(index * 4))..]),
        StoredElementType.Float64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(storage[checked((int)(index * 8))..]),
        StoredElementType.Float16 => (float)BinaryPrimitives.ReadHalfLittleEndian(storage[checked((int)(index * 2))..]),
        // bfloat16 is the upper half of a float32.
        StoredElementType.BFloat16 => BitConverter.Int32BitsToSingle(
            BinaryPrimitives.ReadUInt16LittleEndian(storage[checked((int)(index * 2))..]) << 16),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a floating type"),
    };

    private static int ReadInt(StoredElementType type, ReadOnlySpan<byte> storage, long index, string context)
    {
        if (type == StoredElementType.Int32)
        {
            return BinaryPrimitives.ReadInt32LittleEndian(storage[checked((int)(index * 4))..]);
        }
        long value = BinaryPrimitives.ReadInt64LittleEndian(storage[checked((int)(index * 8))..]);
        if (value is < int.MinValue or > int.MaxValue)
        {
            throw new InvalidDataException($"{context}: int64 value {value} at storage element {index} does not fit in int32");
        }
        return (int)value;
    }
}
