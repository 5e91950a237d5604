namespace IlgpuDiffusion.Tensors.Backends;

// One definition of every elementwise function serves all executors: the struct is a generic
// argument of the managed CPU loops and of the ILGPU kernels (which specialise on it). Methods use
// MathF only, which ILGPU maps to device intrinsics.

/// <summary>y = f(x; a, b) and its derivative dy/dx (given x and y, so ops can reuse the output).</summary>
public interface IUnaryOp
{
    float Apply(float x, float a, float b);
    float Derivative(float x, float y, float a, float b);
}

/// <summary>y = f(a, b).</summary>
public interface IBinaryOp
{
    float Apply(float a, float b);
}

/// <summary>An associative, commutative reduction with an identity element.</summary>
public interface IReduceOp
{
    float Identity { get; }
    float Combine(float acc, float x);
}

public struct NegOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => -x;
    public readonly float Derivative(float x, float y, float a, float b) => -1f;
}

/// <summary>y = a·x + b.</summary>
public struct AffineOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => a * x + b;
    public readonly float Derivative(float x, float y, float a, float b) => a;
}

public struct ExpOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => MathF.Exp(x);
    public readonly float Derivative(float x, float y, float a, float b) => y;
}

public struct LogOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => MathF.Log(x);
    public readonly float Derivative(float x, float y, float a, float b) => 1f / x;
}

public struct SqrtOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => MathF.Sqrt(x);
    public readonly float Derivative(float x, float y, float a, float b) => 0.5f / y;
}

/// <summary>y = x^a.</summary>
public struct PowOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => a == 2f ? x * x : MathF.Pow(x, a);
    public readonly float Derivative(float x, float y, float a, float b) => a == 2f ? 2f * x : a * MathF.Pow(x, a - 1f);
}

public struct AbsOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => MathF.Abs(x);
    public readonly float Derivative(float x, float y, float a, float b) => x > 0f ? 1f : x < 0f ? -1f : 0f;
}

/// <summary>y = min(max(x, a), b); gradient 1 inside [a, b] (PyTorch passes it at the bounds too).</summary>
public struct ClampOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => MathF.Min(MathF.Max(x, a), b);
    public readonly float Derivative(float x, float y, float a, float b) => x >= a && x <= b ? 1f : 0f;
}

public struct ReluOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => x > 0f ? x : 0f;
    public readonly float Derivative(float x, float y, float a, float b) => x > 0f ? 1f : 0f;
}

/// <summary>Leaky ReLU with negative slope a.</summary>
public struct LeakyReluOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => x > 0f ? x : a * x;
    public readonly float Derivative(float x, float y, float a, float b) => x > 0f ? 1f : a;
}

public struct SigmoidOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => 1f / (1f + MathF.Exp(-x));
    public readonly float Derivative(float x, float y, float a, float b) => y * (1f - y);
}

public struct TanhOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => MathF.Tanh(x);
    public readonly float Derivative(float x, float y, float a, float b) => 1f - y * y;
}

/// <summary>SiLU (swish): x·sigmoid(x).</summary>
public struct SiluOp : IUnaryOp
{
    public readonly float Apply(float x, float a, float b) => x / (1f + MathF.Exp(-x));

    public readonly float Derivative(float x, float y, float a, float b)
    {
        float s = 1f / (1f + MathF.Exp(-x));
        return s * (1f + x * (1f - s));
    }
}

public struct AddOp : IBinaryOp { public readonly float Apply(float a, float b) => a + b; }
public struct SubOp : IBinaryOp { public readonly float Apply(float a, float b) => a - b; }
public struct MulOp : IBinaryOp { public readonly float Apply(float a, float b) => a * b; }
public struct DivOp : IBinaryOp { public readonly float Apply(float a, float b) => a / b; }
public struct MaximumOp : IBinaryOp { public readonly float Apply(float a, float b) => MathF.Max(a, b); }

public struct SumReduce : IReduceOp
{
    public readonly float Identity => 0f;
    public readonly float Combine(float acc, float x) => acc + x;
}

public struct MaxReduce : IReduceOp
{
    public readonly float Identity => float.NegativeInfinity;
    public readonly float Combine(float acc, float x) => MathF.Max(acc, x);
}

public struct MinReduce : IReduceOp
{
    public readonly float Identity => float.PositiveInfinity;
    public readonly float Combine(float acc, float x) => MathF.Min(acc, x);
}
