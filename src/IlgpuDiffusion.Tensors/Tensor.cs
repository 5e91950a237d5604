using System.Runtime.InteropServices;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors;

/// <summary>
/// A contiguous, row-major (NCHW) n-dimensional array on a <see cref="Tensors.Device"/>, with
/// PyTorch-style reverse-mode autograd. Ops live in the partial files under Ops/, each next to its
/// backward rule. Disposing releases the memory to the device's caching allocator (views share it
/// through a reference count); tensors created inside a <see cref="TensorScope"/> are disposed with it.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private readonly int[] _shape;
    private bool _disposed;
    private bool _requiresGrad;
    private bool _graphReleased; // the node that made this tensor was freed by a backward pass
    private int _savedBy; // recorded backward rules that read this tensor and have not run
    private bool _heldByGraphOnly; // unreachable to the caller: released when _savedBy drops to 0

    internal Tensor(Device device, int[] shape, DType dtype, Storage? sharedStorage = null)
    {
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"negative dimension in shape {ShapeString(shape)}");
        long count = 1;
        foreach (int d in shape) count *= d;
        if (count > int.MaxValue) throw new ArgumentException($"shape {ShapeString(shape)} has more than 2^31 elements");
        _shape = shape;
        Device = device;
        DType = dtype;
        Count = (int)count;
        Storage = sharedStorage?.AddReference() ?? new Storage(device, Count);
        TensorScope.Register(this);
    }

    public Device Device { get; }
    public DType DType { get; }
    /// <summary>Number of elements.</summary>
    public int Count { get; }
    public IReadOnlyList<int> Shape => _shape;
    public int Rank => _shape.Length;
    /// <summary>An optional label used in error messages and state dicts.</summary>
    public string? Name { get; set; }

    internal Storage Storage { get; }
    /// <summary>The raw buffer, for calling executor primitives directly (benchmarks, custom kernels).</summary>
    public BufferView View
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return new BufferView(Storage.Buffer, 0);
        }
    }
    internal int[] Dims => _shape;
    internal IBackend Backend => Device.Backend;

    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Size(int dim) => _shape[NormaliseDim(dim, Rank)];

    // ---------------- autograd state ----------------

    /// <summary>Whether gradients flow to this tensor. Settable on leaves (tensors no op produced).</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (Node != null && !value)
                throw new InvalidOperationException("requires_grad can only be cleared on a leaf tensor; use Detach()");
            if (value && DType != DType.Float32) throw new InvalidOperationException("only float tensors can require gradients");
            _requiresGrad = value;
        }
    }

    /// <summary>Accumulated gradient of a leaf after <see cref="Backward"/>.</summary>
    public Tensor? Grad { get; set; }

    public bool IsLeaf => Node == null;

    internal GradNode? Node { get; set; }

    // ---------------- creation ----------------

    public static Tensor Empty(int[] shape, Device? device = null, DType dtype = DType.Float32) =>
        new(device ?? Device.Cpu, (int[])shape.Clone(), dtype);

    public static Tensor Full(int[] shape, float value, Device? device = null)
    {
        var t = Empty(shape, device);
        t.Backend.Fill(t.View, t.Count, value);
        return t;
    }

    public static Tensor Zeros(int[] shape, Device? device = null) => Full(shape, 0f, device);
    public static Tensor Ones(int[] shape, Device? device = null) => Full(shape, 1f, device);
    public static Tensor Scalar(float value, Device? device = null) => Full([], value, device);

    public static Tensor FromArray(float[] data, int[] shape, Device? device = null)
    {
        var t = Empty(shape, device);
        if (data.Length != t.Count)
            throw new ArgumentException($"{data.Length} values do not fill shape {ShapeString(shape)} ({t.Count} elements)");
        t.Backend.Upload(data, t.View);
        return t;
    }

    public static Tensor FromArray(int[] data, int[] shape, Device? device = null)
    {
        var t = Empty(shape, device, DType.Int32);
        if (data.Length != t.Count)
            throw new ArgumentException($"{data.Length} values do not fill shape {ShapeString(shape)} ({t.Count} elements)");
        t.Backend.Upload(MemoryMarshal.Cast<int, float>(data), t.View);
        return t;
    }

    /// <summary>Uniform [0, 1) values from <paramref name="generator"/> (same numbers on every device).</summary>
    public static Tensor Rand(int[] shape, Generator generator, Device? device = null) => Random(shape, generator, device, normal: false);

    /// <summary>Standard normal values from <paramref name="generator"/> (same numbers on every device).</summary>
    public static Tensor Randn(int[] shape, Generator generator, Device? device = null) => Random(shape, generator, device, normal: true);

    private static Tensor Random(int[] shape, Generator generator, Device? device, bool normal)
    {
        var t = Empty(shape, device);
        t.FillRandom(generator, normal);
        return t;
    }

    /// <summary>Overwrites this tensor with the values <see cref="Rand"/> or <see cref="Randn"/> would draw.</summary>
    internal void FillRandom(Generator generator, bool normal)
    {
        ulong counter = generator.Advance(Count);
        Backend.FillRandom(View, Count, generator.Seed, counter, normal);
    }

    // ---------------- reading back ----------------

    public float[] ToArray()
    {
        RequireDType(DType.Float32, nameof(ToArray));
        var data = new float[Count];
        Backend.Download(View, data);
        return data;
    }

    public int[] ToIntArray()
    {
        RequireDType(DType.Int32, nameof(ToIntArray));
        var data = new int[Count];
        Backend.Download(View, MemoryMarshal.Cast<int, float>(data.AsSpan()));
        return data;
    }

    /// <summary>The value of a one-element tensor (waits for queued device work).</summary>
    public float Item()
    {
        if (Count != 1) throw new InvalidOperationException($"Item() needs a one-element tensor, got shape {ShapeString(_shape)}");
        Span<float> one = stackalloc float[1];
        Backend.Download(View, one);
        return one[0];
    }

    /// <summary>A copy on <paramref name="device"/> (through the host when devices differ); no autograd across devices.</summary>
    public Tensor To(Device device)
    {
        if (device == Device) return this;
        var copy = new Tensor(device, (int[])_shape.Clone(), DType);
        var host = new float[Count];
        Backend.Download(View, host);
        device.Backend.Upload(host, copy.View);
        return copy;
    }

    /// <summary>Overwrites this tensor's values (in place, no autograd) with those of <paramref name="source"/>.</summary>
    public void CopyFrom(Tensor source)
    {
        CheckSameShape(this, source, "copy_");
        if (source.Device == Device) Backend.StridedCopy(source.View, Dim6.From([1]), View, Dim6.From([1]), Dim6.From([Count]), 1);
        else { var host = new float[Count]; source.Backend.Download(source.View, host); Backend.Upload(host, View); }
    }

    /// <summary>Overwrites this tensor's values from a host tensor of the same shape (int ↔ float converted).</summary>
    public void CopyFrom(HostTensor value)
    {
        if (!value.Shape.AsSpan().SequenceEqual(_shape))
            throw new ArgumentException(
                $"copy_: host tensor of shape {ShapeString(value.Shape)} into a tensor of shape {ShapeString(_shape)}");
        if (DType == DType.Int32)
            Backend.Upload(MemoryMarshal.Cast<int, float>(value.Ints ?? value.Floats!.Select(f => (int)f).ToArray()), View);
        else CopyFrom(value.Floats ?? value.Ints!.Select(i => (float)i).ToArray());
    }

    public static Tensor FromHost(HostTensor value, Device? device = null)
    {
        var t = Empty(value.Shape, device, value.DType);
        t.CopyFrom(value);
        return t;
    }

    public HostTensor ToHost() => DType == DType.Int32
        ? HostTensor.FromInts((int[])_shape.Clone(), ToIntArray())
        : HostTensor.FromFloats((int[])_shape.Clone(), ToArray());

    public void CopyFrom(ReadOnlySpan<float> values)
    {
        if (values.Length != Count) throw new ArgumentException($"{values.Length} values for a tensor of shape {ShapeString(_shape)}");
        Backend.Upload(values, View);
    }

    // ---------------- lifetime ----------------

    public bool IsDisposed => _disposed;

    public void Dispose()
    {
        ReleaseMemory();
        Node = null;
    }

    /// <summary>Hands the memory back to the allocator but keeps the tensor's place in the graph (its shape and node),
    /// which the backward pass walks through.</summary>
    private void ReleaseMemory()
    {
        if (_disposed) return;
        _disposed = true;
        Storage.Release();
    }

    /// <summary>A new tensor object over the same memory, outside the graph.</summary>
    public Tensor Detach() => new(Device, _shape, DType, Storage);

    /// <summary>A new tensor object sharing this one's memory and graph position (used for views).</summary>
    internal Tensor Alias(int[] shape) => new(Device, shape, DType, Storage);

    public override string ToString() => $"Tensor{ShapeString(_shape)} {DType} on {Device.Name}{(RequiresGrad ? " requires_grad" : "")}";

    // ---------------- helpers shared by the ops ----------------

    public static string ShapeString(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

    internal static int NormaliseDim(int dim, int rank)
    {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= Math.Max(rank, 1) || (rank == 0 && d != 0))
            throw new ArgumentOutOfRangeException(nameof(dim), $"dimension {dim} is out of range for a tensor of rank {rank}");
        return d;
    }

    internal void RequireDType(DType dtype, string op)
    {
        if (DType != dtype)
            throw new InvalidOperationException($"{op}: expected a {dtype} tensor, got {DType} of shape {ShapeString(_shape)}");
    }

    internal static void CheckSameShape(Tensor a, Tensor b, string op)
    {
        if (!a._shape.AsSpan().SequenceEqual(b._shape))
            throw new ArgumentException($"{op}: shapes {ShapeString(a._shape)} and {ShapeString(b._shape)} differ");
    }

    internal static void CheckSameDevice(Tensor a, Tensor b, string op)
    {
        if (a.Device != b.Device)
            throw new ArgumentException($"{op}: tensors are on different devices ({a.Device.Name} and {b.Device.Name})");
    }
}
