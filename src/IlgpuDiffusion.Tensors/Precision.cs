using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

/// <summary>
/// How the matrix products of ops started on this thread accumulate: float32 by default (fast, like PyTorch's
/// float32 matmul), or float64 while a <see cref="AccumulateGemm"/> handle lives (every product exact, one
/// rounding: the arithmetic of a float64 reference, for parity checks). A thread-local scope rather than a
/// device setting, so concurrent work on the same device keeps its own arithmetic.
/// </summary>
public static class Precision
{
    [ThreadStatic] private static GemmAccumulation _gemm;

    public static GemmAccumulation Gemm => _gemm;

    public static Handle AccumulateGemm(GemmAccumulation accumulation)
    {
        var handle = new Handle(_gemm);
        _gemm = accumulation;
        return handle;
    }

    public readonly struct Handle(GemmAccumulation previous) : IDisposable
    {
        public void Dispose() => _gemm = previous;
    }
}
