using System.Numerics;
using System.Numerics.Tensors;

namespace IlgpuDiffusion.Tensors.Backends;

// One definition of every elementwise function serves all executors. Each op struct carries two forms side
// by side: the scalar form, a generic argument of the ILGPU kernels (which specialise on it; MathF only,
// which ILGPU maps to device intrinsics), and the span form the cpu executor runs over contiguous runs:
// TensorPrimitives where a vectorised version exists, otherwise the scalar form through ElementLoops.
// Kernels call only the scalar form, so only it is ever compiled for a device. The span forms are
// implemented on each struct rather than as default interface methods, which would box the struct.
// The structs are alike in shape on purpose: each is the whole definition of one op.

/// <summary>Operands of an elementwise op: A (the first or only input), B (the second), the output.</summary>
[Flags]
public enum Operands
{
    None = 0,
    A = 1,
    B = 2,
    Output = 4,
}

/// <summary>y = f(x; a, b) and its derivative dy/dx (given x and y, so ops can reuse the output).</summary>
public interface IUnaryOp
{
    float Apply(float x, float a, float b);
    float Derivative(float x, float y, float a, float b);

    /// <summary>Which of x and y the derivative reads: autograd saves only those for the backward pass.</summary>
    Operands DerivativeReads { get; }

    /// <summary>y[i] = f(x[i]); x and y may be the same span.</summary>
    void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b);

    /// <summary>dx[i] = dy[i] · f'(x[i], y[i]); dx may be the same span as dy.</summary>
    void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b);
}

/// <summary>A unary op whose derivative has a vectorised span form (<see cref="ElementLoops.BackwardInChunks"/>).</summary>
public interface IVectorDerivative
{
    /// <summary>d[i] = f'(x[i], y[i]) over at most <see cref="ElementLoops.ChunkLength"/> elements;
    /// <paramref name="scratch"/>, as long as d, holds intermediate values.</summary>
    void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> scratch, float a, float b);
}

/// <summary>y = f(a, b).</summary>
public interface IBinaryOp
{
    float Apply(float a, float b);

    /// <summary>y[i] = f(a[i], b[i]); y may be the same span as a or b.</summary>
    void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y);

    /// <summary>y[i] = f(a[i], b); y may be the same span as a.</summary>
    void Apply(ReadOnlySpan<float> a, float b, Span<float> y);
}

/// <summary>An associative, commutative reduction with an identity element.</summary>
public interface IReduceOp
{
    float Identity { get; }
    float Combine(float acc, float x);

    /// <summary>acc[i] = Combine(acc[i], x[i]).</summary>
    void Combine(Span<float> acc, ReadOnlySpan<float> x);

    /// <summary>The reduction of a non-empty run.</summary>
    float Reduce(ReadOnlySpan<float> x);
}

/// <summary>A comparison with IEEE semantics: false when either operand is NaN (so <see cref="IsNotEqual"/> holds).</summary>
public interface IComparison
{
    bool Holds(float a, float b);
}

/// <summary>The span forms of ops that have no vectorised version (the scalar form in a loop), and the chunking
/// through stack buffers that lets a vectorised derivative write dx over dy.</summary>
public static class ElementLoops
{
    /// <summary>Elements per chunk of <see cref="BackwardInChunks"/> (two stack buffers of this many floats).</summary>
    public const int ChunkLength = 1024;

    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> x, Span<float> y, float a, float b) where TOp : struct, IUnaryOp
    {
        for (int i = 0; i < x.Length; i++) y[i] = op.Apply(x[i], a, b);
    }

    public static void Backward<TOp>(TOp op, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx,
        float a, float b) where TOp : struct, IUnaryOp
    {
        for (int i = 0; i < x.Length; i++) dx[i] = dy[i] * op.Derivative(x[i], y[i], a, b);
    }

    /// <summary>dx = dy · f'(x, y) with the derivative's span form, a chunk at a time.</summary>
    public static void BackwardInChunks<TOp>(TOp op, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx,
        float a, float b) where TOp : struct, IVectorDerivative
    {
        Span<float> derivative = stackalloc float[ChunkLength], scratch = stackalloc float[ChunkLength];
        for (int i = 0; i < x.Length; i += ChunkLength)
        {
            int length = Math.Min(ChunkLength, x.Length - i);
            var d = derivative[..length];
            op.Derivative(x.Slice(i, length), y.Slice(i, length), d, scratch[..length], a, b);
            TensorPrimitives.Multiply(dy.Slice(i, length), d, dx.Slice(i, length));
        }
    }

    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) where TOp : struct, IBinaryOp
    {
        for (int i = 0; i < a.Length; i++) y[i] = op.Apply(a[i], b[i]);
    }

    public static void Apply<TOp>(TOp op, ReadOnlySpan<float> a, float b, Span<float> y) where TOp : struct, IBinaryOp
    {
        for (int i = 0; i < a.Length; i++) y[i] = op.Apply(a[i], b);
    }
}

// ---------------- unary ----------------

public struct NegOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.None;
    public readonly float Apply(float x, float a, float b) => -x;
    public readonly float Derivative(float x, float y, float a, float b) => -1f;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Negate(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        TensorPrimitives.Negate(dy, dx);
}

/// <summary>y = a·x + b.</summary>
public struct AffineOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.None;
    public readonly float Apply(float x, float a, float b) => a * x + b;
    public readonly float Derivative(float x, float y, float a, float b) => a;

    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b)
    {
        TensorPrimitives.Multiply(x, a, y);
        TensorPrimitives.Add(y, b, y);
    }

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        TensorPrimitives.Multiply(dy, a, dx);
}

public struct ExpOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.Output;
    public readonly float Apply(float x, float a, float b) => MathF.Exp(x);
    public readonly float Derivative(float x, float y, float a, float b) => y;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Exp(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        TensorPrimitives.Multiply(dy, y, dx);
}

public struct LogOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.A;
    public readonly float Apply(float x, float a, float b) => MathF.Log(x);
    public readonly float Derivative(float x, float y, float a, float b) => 1f / x;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Log(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.Backward(this, x, y, dy, dx, a, b);
}

public struct SqrtOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.Output;
    public readonly float Apply(float x, float a, float b) => MathF.Sqrt(x);
    public readonly float Derivative(float x, float y, float a, float b) => 0.5f / y;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Sqrt(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.Backward(this, x, y, dy, dx, a, b);
}

/// <summary>y = x^a (the square exactly as x·x).</summary>
public struct PowOp : IUnaryOp, IVectorDerivative
{
    public readonly Operands DerivativeReads => Operands.A;
    public readonly float Apply(float x, float a, float b) => a == 2f ? x * x : MathF.Pow(x, a);
    public readonly float Derivative(float x, float y, float a, float b) => a == 2f ? 2f * x : a * MathF.Pow(x, a - 1f);

    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b)
    {
        if (a == 2f) TensorPrimitives.Multiply(x, x, y);
        else TensorPrimitives.Pow(x, a, y);
    }

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.BackwardInChunks(this, x, y, dy, dx, a, b);

    public readonly void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> scratch, float a, float b)
    {
        if (a == 2f) TensorPrimitives.Multiply(x, 2f, d);
        else
        {
            TensorPrimitives.Pow(x, a - 1f, d);
            TensorPrimitives.Multiply(d, a, d);
        }
    }
}

public struct AbsOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.A;
    public readonly float Apply(float x, float a, float b) => MathF.Abs(x);
    public readonly float Derivative(float x, float y, float a, float b) => x > 0f ? 1f : x < 0f ? -1f : 0f;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Abs(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.Backward(this, x, y, dy, dx, a, b);
}

/// <summary>y = min(max(x, a), b); gradient 1 inside [a, b] (PyTorch passes it at the bounds too).</summary>
public struct ClampOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.A;
    public readonly float Apply(float x, float a, float b) => MathF.Min(MathF.Max(x, a), b);
    public readonly float Derivative(float x, float y, float a, float b) => x >= a && x <= b ? 1f : 0f;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => ElementLoops.Apply(this, x, y, a, b);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.Backward(this, x, y, dy, dx, a, b);
}

public struct ReluOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.Output;
    public readonly float Apply(float x, float a, float b) => x > 0f ? x : 0f;
    public readonly float Derivative(float x, float y, float a, float b) => y > 0f ? 1f : 0f;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Max(x, 0f, y);

    /// <summary>dx = dy where y &gt; 0 (where x &gt; 0), else 0: the output is what the next layer saves anyway.</summary>
    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b)
    {
        int i = 0;
        for (; i <= y.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var positive = Vector.GreaterThan(new Vector<float>(y[i..]), Vector<float>.Zero);
            Vector.ConditionalSelect(positive, new Vector<float>(dy[i..]), Vector<float>.Zero).CopyTo(dx[i..]);
        }
        for (; i < y.Length; i++) dx[i] = y[i] > 0f ? dy[i] : 0f;
    }
}

/// <summary>Leaky ReLU with negative slope a.</summary>
public struct LeakyReluOp : IUnaryOp
{
    public readonly Operands DerivativeReads => Operands.A;
    public readonly float Apply(float x, float a, float b) => x > 0f ? x : a * x;
    public readonly float Derivative(float x, float y, float a, float b) => x > 0f ? 1f : a;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => ElementLoops.Apply(this, x, y, a, b);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.Backward(this, x, y, dy, dx, a, b);
}

public struct SigmoidOp : IUnaryOp, IVectorDerivative
{
    public readonly Operands DerivativeReads => Operands.Output;
    public readonly float Apply(float x, float a, float b) => 1f / (1f + MathF.Exp(-x));
    public readonly float Derivative(float x, float y, float a, float b) => y * (1f - y);
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Sigmoid(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.BackwardInChunks(this, x, y, dy, dx, a, b);

    public readonly void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> scratch, float a, float b)
    {
        TensorPrimitives.Subtract(1f, y, d);
        TensorPrimitives.Multiply(d, y, d);
    }
}

public struct TanhOp : IUnaryOp, IVectorDerivative
{
    public readonly Operands DerivativeReads => Operands.Output;
    public readonly float Apply(float x, float a, float b) => MathF.Tanh(x);
    public readonly float Derivative(float x, float y, float a, float b) => 1f - y * y;
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b) => TensorPrimitives.Tanh(x, y);

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.BackwardInChunks(this, x, y, dy, dx, a, b);

    /// <summary>1 − y² as (1 − y)(1 + y).</summary>
    public readonly void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> scratch, float a, float b)
    {
        TensorPrimitives.Subtract(1f, y, scratch);
        TensorPrimitives.Add(y, 1f, d);
        TensorPrimitives.Multiply(scratch, d, d);
    }
}

/// <summary>SiLU (swish): x·sigmoid(x).</summary>
public struct SiluOp : IUnaryOp, IVectorDerivative
{
    public readonly Operands DerivativeReads => Operands.A;
    public readonly float Apply(float x, float a, float b) => x / (1f + MathF.Exp(-x));

    public readonly float Derivative(float x, float y, float a, float b)
    {
        float s = 1f / (1f + MathF.Exp(-x));
        return s * (1f + x * (1f - s));
    }

    /// <summary>Through a stack buffer a chunk at a time, so x and y may alias.</summary>
    public readonly void Apply(ReadOnlySpan<float> x, Span<float> y, float a, float b)
    {
        Span<float> sigmoid = stackalloc float[ElementLoops.ChunkLength];
        for (int i = 0; i < x.Length; i += sigmoid.Length)
        {
            int length = Math.Min(sigmoid.Length, x.Length - i);
            TensorPrimitives.Sigmoid(x.Slice(i, length), sigmoid[..length]);
            TensorPrimitives.Multiply(x.Slice(i, length), sigmoid[..length], y.Slice(i, length));
        }
    }

    public readonly void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float a, float b) =>
        ElementLoops.BackwardInChunks(this, x, y, dy, dx, a, b);

    /// <summary>s (1 + x (1 − s)), s = sigmoid(x).</summary>
    public readonly void Derivative(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> d, Span<float> scratch, float a, float b)
    {
        TensorPrimitives.Sigmoid(x, scratch);
        TensorPrimitives.Subtract(1f, scratch, d);
        TensorPrimitives.FusedMultiplyAdd(x, d, 1f, d);
        TensorPrimitives.Multiply(d, scratch, d);
    }
}

// ---------------- binary ----------------

public struct AddOp : IBinaryOp
{
    public readonly float Apply(float a, float b) => a + b;
    public readonly void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Add(a, b, y);
    public readonly void Apply(ReadOnlySpan<float> a, float b, Span<float> y) => TensorPrimitives.Add(a, b, y);
}

public struct SubOp : IBinaryOp
{
    public readonly float Apply(float a, float b) => a - b;
    public readonly void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Subtract(a, b, y);
    public readonly void Apply(ReadOnlySpan<float> a, float b, Span<float> y) => TensorPrimitives.Subtract(a, b, y);
}

public struct MulOp : IBinaryOp
{
    public readonly float Apply(float a, float b) => a * b;
    public readonly void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Multiply(a, b, y);
    public readonly void Apply(ReadOnlySpan<float> a, float b, Span<float> y) => TensorPrimitives.Multiply(a, b, y);
}

public struct DivOp : IBinaryOp
{
    public readonly float Apply(float a, float b) => a / b;
    public readonly void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Divide(a, b, y);
    public readonly void Apply(ReadOnlySpan<float> a, float b, Span<float> y) => TensorPrimitives.Divide(a, b, y);
}

public struct MaximumOp : IBinaryOp
{
    public readonly float Apply(float a, float b) => MathF.Max(a, b);
    public readonly void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => TensorPrimitives.Max(a, b, y);
    public readonly void Apply(ReadOnlySpan<float> a, float b, Span<float> y) => TensorPrimitives.Max(a, b, y);
}

/// <summary>1 where the comparison holds, else 0 (PyTorch's boolean mask cast to float).</summary>
public struct CompareOp<TComparison> : IBinaryOp where TComparison : struct, IComparison
{
    public readonly float Apply(float a, float b) => default(TComparison).Holds(a, b) ? 1f : 0f;
    public readonly void Apply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => ElementLoops.Apply(this, a, b, y);
    public readonly void Apply(ReadOnlySpan<float> a, float b, Span<float> y) => ElementLoops.Apply(this, a, b, y);
}

public struct IsEqual : IComparison { public readonly bool Holds(float a, float b) => a == b; }
public struct IsNotEqual : IComparison { public readonly bool Holds(float a, float b) => a != b; }
public struct IsGreater : IComparison { public readonly bool Holds(float a, float b) => a > b; }
public struct IsGreaterEqual : IComparison { public readonly bool Holds(float a, float b) => a >= b; }
public struct IsLess : IComparison { public readonly bool Holds(float a, float b) => a < b; }
public struct IsLessEqual : IComparison { public readonly bool Holds(float a, float b) => a <= b; }

// ---------------- reductions ----------------

public struct SumReduce : IReduceOp
{
    public readonly float Identity => 0f;
    public readonly float Combine(float acc, float x) => acc + x;
    public readonly void Combine(Span<float> acc, ReadOnlySpan<float> x) => TensorPrimitives.Add(acc, x, acc);
    public readonly float Reduce(ReadOnlySpan<float> x) => TensorPrimitives.Sum(x);
}

public struct MaxReduce : IReduceOp
{
    public readonly float Identity => float.NegativeInfinity;
    public readonly float Combine(float acc, float x) => MathF.Max(acc, x);
    public readonly void Combine(Span<float> acc, ReadOnlySpan<float> x) => TensorPrimitives.Max(acc, x, acc);
    public readonly float Reduce(ReadOnlySpan<float> x) => TensorPrimitives.Max(x);
}

public struct MinReduce : IReduceOp
{
    public readonly float Identity => float.PositiveInfinity;
    public readonly float Combine(float acc, float x) => MathF.Min(acc, x);
    public readonly void Combine(Span<float> acc, ReadOnlySpan<float> x) => TensorPrimitives.Min(acc, x, acc);
    public readonly float Reduce(ReadOnlySpan<float> x) => TensorPrimitives.Min(x);
}
