using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace IlgpuDiffusion.Tensors.IO;

/// <summary>A class named by a pickle GLOBAL opcode. It is only a name: the unpickler never
/// imports or runs anything; the caller decides what calling it means.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>Interprets the subset of the pickle machine (protocols 2–5) that <c>torch.save</c>
/// emits, building plain values: tuples are <c>object?[]</c>, lists <c>List&lt;object?&gt;</c>,
/// dicts <c>OrderedDictionary&lt;object, object?&gt;</c>, integers <c>long</c>. Everything that
/// could execute code is delegated to the caller's hooks: <paramref name="resolveGlobal"/> vets
/// every GLOBAL before it reaches the stack, <paramref name="call"/> evaluates REDUCE and NEWOBJ,
/// <paramref name="build"/> BUILD, and <paramref name="persistentLoad"/> BINPERSID.</summary>
internal sealed class RestrictedUnpickler(
    string context,
    Func<string, string, PickleGlobal> resolveGlobal,
    Func<PickleGlobal, object?[], object> call,
    Func<object?, object?, object?> build,
    Func<object?, object> persistentLoad)
{
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];

    public object? Load(ReadOnlySpan<byte> pickle)
    {
        var reader = new Reader(pickle, context);
        while (true)
        {
            int position = reader.Position;
            byte opcode = reader.Byte();
            switch (opcode)
            {
                case 0x80: reader.Byte(); break; // PROTO: the version adds nothing we rely on
                case 0x95: reader.Bytes(8); break; // FRAME: only a read-ahead hint
                case (byte)'.': return Pop(); // STOP
                case (byte)'(': _marks.Push(_stack.Count); break; // MARK
                case (byte)'}': Push(new OrderedDictionary<object, object?>()); break; // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)reader.Int32()); break; // BININT
                case (byte)'K': Push((long)reader.Byte()); break; // BININT1
                case (byte)'M': Push((long)reader.UInt16()); break; // BININT2
                case 0x8a: Push(reader.Long1()); break; // LONG1
                case (byte)'G': Push(reader.BigEndianDouble()); break; // BINFLOAT
                case (byte)'X': Push(reader.Utf8(reader.Int32())); break; // BINUNICODE
                case 0x8c: Push(reader.Utf8(reader.Byte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(reader.Utf8(reader.Int64())); break; // BINUNICODE8
                case (byte)'q': _memo[reader.Byte()] = Peek(); break; // BINPUT
                case (byte)'r': _memo[reader.UInt32()] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                case (byte)'h': Push(MemoGet(reader.Byte(), position)); break; // BINGET
                case (byte)'j': Push(MemoGet(reader.UInt32(), position)); break; // LONG_BINGET
                case (byte)'t': Push(PopToMark().ToArray()); break; // TUPLE
                case 0x85: Push(PopTuple(1)); break; // TUPLE1
                case 0x86: Push(PopTuple(2)); break; // TUPLE2
                case 0x87: Push(PopTuple(3)); break; // TUPLE3
                case (byte)'c': // GLOBAL
                    Push(resolveGlobal(reader.Line(), reader.Line()));
                    break;
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop<string>(position);
                    var module = Pop<string>(position);
                    Push(resolveGlobal(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                case 0x81: // NEWOBJ: cls.__new__(cls, *args); for the allowed classes the same as a call
                {
                    var args = Pop<object?[]>(position);
                    Push(call(Pop<PickleGlobal>(position), args));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    Push(build(Pop(), state));
                    break;
                }
                case (byte)'Q': Push(persistentLoad(Pop())); break; // BINPERSID
                case (byte)'s': // SETITEM
                {
                    var value = Pop();
                    var key = Pop();
                    SetItems(Peek(), [key, value], position);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopToMark();
                    SetItems(Peek(), items, position);
                    break;
                }
                case (byte)'a': // APPEND
                {
                    var item = Pop();
                    Peek<List<object?>>(position).Add(item);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopToMark();
                    Peek<List<object?>>(position).AddRange(items);
                    break;
                }
                default:
                    throw new InvalidDataException(
                        $"{context}: unsupported pickle opcode 0x{opcode:x2} at byte {position}");
            }
        }
    }

    private void Push(object? value) => _stack.Add(value);

    private object? Peek() => _stack.Count > 0
        ? _stack[^1]
        : throw new InvalidDataException($"{context}: pickle stack underflow");

    private T Peek<T>(int position) => Peek() is T value
        ? value
        : throw new InvalidDataException($"{context}: expected a {typeof(T).Name} on the stack at byte {position}");

    private object? Pop()
    {
        var value = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private T Pop<T>(int position)
    {
        var value = Peek<T>(position);
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private List<object?> PopToMark()
    {
        if (!_marks.TryPop(out int mark) || mark > _stack.Count)
        {
            throw new InvalidDataException($"{context}: pickle has no MARK to pop to");
        }
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private object?[] PopTuple(int count)
    {
        var items = new object?[count];
        for (int i = count - 1; i >= 0; i--) items[i] = Pop();
        return items;
    }

    private object? MemoGet(long key, int position) => _memo.TryGetValue(key, out var value)
        ? value
        : throw new InvalidDataException($"{context}: pickle memo key {key} unset at byte {position}");

    private void SetItems(object? target, List<object?> keysAndValues, int position)
    {
        if (target is not OrderedDictionary<object, object?> dict || keysAndValues.Count % 2 != 0)
        {
            throw new InvalidDataException($"{context}: SETITEM(S) without a dict and key/value pairs at byte {position}");
        }
        for (int i = 0; i < keysAndValues.Count; i += 2)
        {
            var key = keysAndValues[i] ?? throw new InvalidDataException($"{context}: None as a dict key at byte {position}");
            dict[key] = keysAndValues[i + 1];
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> data, string context)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        public int Position { get; private set; }

        /// <summary>The next <paramref name="count"/> bytes; a length field (up to 64 bits) beyond the
        /// pickle's end is an error, not an allocation.</summary>
        public ReadOnlySpan<byte> Bytes(long count)
        {
            if (count < 0 || count > _data.Length - Position)
            {
                throw new InvalidDataException($"{context}: pickle ends early (at byte {Position}, wanted {count} more)");
            }
            var bytes = _data.Slice(Position, (int)count);
            Position += (int)count;
            return bytes;
        }

        public byte Byte() => Bytes(1)[0];
        public ushort UInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2));
        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4));
        public uint UInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4));
        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8));
        public double BigEndianDouble() => BinaryPrimitives.ReadDoubleBigEndian(Bytes(8));
        public string Utf8(long length) => Encoding.UTF8.GetString(Bytes(length));

        // LONG1: a little-endian two's-complement integer of the given byte count.
        public long Long1()
        {
            var value = new BigInteger(Bytes(Byte()), isUnsigned: false, isBigEndian: false);
            return value >= long.MinValue && value <= long.MaxValue
                ? (long)value
                : throw new InvalidDataException($"{context}: pickle integer {value} exceeds 64 bits");
        }

        // GLOBAL's operands are newline-terminated ASCII lines.
        public string Line()
        {
            int end = _data[Position..].IndexOf((byte)'\n');
            if (end < 0) throw new InvalidDataException($"{context}: unterminated GLOBAL name at byte {Position}");
            var line = Encoding.ASCII.GetString(Bytes(end));
            Position++;
            return line;
        }
    }
}
