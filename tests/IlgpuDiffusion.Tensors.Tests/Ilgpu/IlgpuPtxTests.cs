using System.Reflection;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;

namespace IlgpuDiffusion.Tensors.Tests.Ilgpu;

/// <summary>Compiles every kernel to PTX for sm_80 (what ILGPU emits on Ampere and Hopper) without a
/// GPU, so unsupported constructs in the CUDA path surface in CI.</summary>
public sealed class IlgpuPtxTests
{
    private static readonly Lazy<PTXBackend> Backend = new(() =>
        new PTXBackend(IlgpuRuntime.Context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_70, nvvmAPI: null!));

    /// <summary>Every kernel is explicitly grouped (element kernels loop grid-stride).</summary>
    private static string CompilePtx(MethodInfo kernel)
    {
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        var specialization = KernelSpecialization.Empty;
        return ((PTXCompiledKernel)Backend.Value.Compile(entry, specialization)).PTXAssembly;
    }

    /// <summary>The kernel, instantiated with <paramref name="typeArgument"/> (an op or a tile shape) if generic.</summary>
    private static MethodInfo Kernel(Type type, string name, Type? typeArgument = null)
    {
        var method = type.GetMethod(name, BindingFlags.Public | BindingFlags.Static)!;
        return typeArgument == null ? method : method.MakeGenericMethod(typeArgument);
    }

    public static TheoryData<string, string?> Kernels => new()
    {
        { nameof(IlgpuKernels.Fill), null },
        { nameof(IlgpuKernels.StridedCopy), null },
        { nameof(IlgpuKernels.Unary), nameof(SiluOp) },
        { nameof(IlgpuKernels.Unary), nameof(PowOp) },
        { nameof(IlgpuKernels.UnaryBackward), nameof(TanhOp) },
        { nameof(IlgpuKernels.Binary), nameof(DivOp) },
        { nameof(IlgpuKernels.BinaryContiguous), nameof(MaximumOp) },
        { nameof(IlgpuKernels.Where), null },
        { nameof(IlgpuKernels.ReducePerOutput), nameof(SumReduce) },
        { nameof(IlgpuKernels.ReduceRows), nameof(MaxReduce) },
        { nameof(IlgpuKernels.ArgReduce), null },
        { nameof(IlgpuKernels.Softmax), null },
        { nameof(IlgpuKernels.SoftmaxBackward), null },
        { nameof(IlgpuKernels.IndexSelect), null },
        { nameof(IlgpuKernels.IndexAdd), null },
        { nameof(IlgpuKernels.Im2Col), null },
        { nameof(IlgpuKernels.Col2Im), null },
        { nameof(IlgpuKernels.AdamStep), null },
        { nameof(IlgpuKernels.FillRandom), null },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_PTX(string name, string? op)
    {
        var opType = op == null ? null : typeof(SumReduce).Assembly.GetType($"{typeof(SumReduce).Namespace}.{op}", throwOnError: true);
        string ptx = CompilePtx(Kernel(typeof(IlgpuKernels), name, opType));
        Assert.Contains(".target sm_80", ptx);
    }

    [Theory]
    [InlineData(typeof(CompareOp<IsLess>))]
    [InlineData(typeof(CompareOp<IsNotEqual>))]
    public void Comparison_kernels_compile_to_ptx(Type op)
    {
        Assert.Contains(".target sm_80", CompilePtx(Kernel(typeof(IlgpuKernels), nameof(IlgpuKernels.Binary), op)));
        Assert.Contains(".target sm_80", CompilePtx(Kernel(typeof(IlgpuKernels), nameof(IlgpuKernels.BinaryContiguous), op)));
    }

    [Theory]
    [InlineData(nameof(IlgpuAttentionKernels.Forward))]
    [InlineData(nameof(IlgpuAttentionKernels.BackwardKeys))]
    [InlineData(nameof(IlgpuAttentionKernels.BackwardQueries))]
    public void Attention_kernel_compiles_with_accumulators_in_registers(string name)
    {
        string ptx = CompilePtx(Kernel(typeof(IlgpuAttentionKernels), name, typeof(GpuAttentionTile)));
        Assert.Contains(".target sm_80", ptx);
        Assert.Contains(".shared", ptx);
        Assert.DoesNotContain(".local", ptx);
    }

    [Theory]
    [InlineData(typeof(GpuGemmTile))]
    public void Gemm_compiles_with_accumulators_in_registers(Type tile)
    {
        string ptx = CompilePtx(Kernel(typeof(IlgpuGemmKernel), nameof(IlgpuGemmKernel.Gemm), tile));
        Assert.Contains(".shared", ptx);
        Assert.DoesNotContain(".local", ptx);
    }

    /// <summary>The split-K reduction (on devices with float64) and the float64-accumulating GEMM sum in double on the device.</summary>
    [Theory]
    [InlineData(nameof(IlgpuGemmKernel.SumSplits), typeof(DoubleSum))]
    [InlineData(nameof(IlgpuGemmKernel.GemmFloat64), typeof(DoubleSum))]
    public void Gemm_helper_kernels_accumulate_in_double(string name, Type? sum)
    {
        string ptx = CompilePtx(Kernel(typeof(IlgpuGemmKernel), name, sum));
        Assert.Contains(".target sm_80", ptx);
        Assert.Contains(".f64", ptx);
    }

    /// <summary>The float-float GEMM (devices without float64) keeps to float on the device.</summary>
    [Fact]
    public void Float_float_gemm_computes_in_float()
    {
        string ptx = CompilePtx(Kernel(typeof(IlgpuGemmKernel), nameof(IlgpuGemmKernel.GemmFloat64), typeof(FloatFloatProductSum)));
        Assert.Contains(".f32", ptx);
        Assert.DoesNotContain(".f64", ptx);
    }
}
