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

    private static string CompilePtx(MethodInfo kernel, bool explicitlyGrouped)
    {
        var entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
        var specialization = KernelSpecialization.Empty;
        return ((PTXCompiledKernel)Backend.Value.Compile(entry, specialization)).PTXAssembly;
    }

    private static MethodInfo Kernel(Type type, string name, Type? op = null)
    {
        var method = type.GetMethod(name, BindingFlags.Public | BindingFlags.Static)!;
        return op == null ? method : method.MakeGenericMethod(op);
    }

    public static TheoryData<string, string?, bool> Kernels => new()
    {
        { nameof(IlgpuKernels.Fill), null, false },
        { nameof(IlgpuKernels.StridedCopy), null, false },
        { nameof(IlgpuKernels.Unary), nameof(SiluOp), false },
        { nameof(IlgpuKernels.Unary), nameof(PowOp), false },
        { nameof(IlgpuKernels.UnaryBackward), nameof(TanhOp), false },
        { nameof(IlgpuKernels.Binary), nameof(DivOp), false },
        { nameof(IlgpuKernels.BinaryContiguous), nameof(MaximumOp), false },
        { nameof(IlgpuKernels.ReducePerOutput), nameof(SumReduce), false },
        { nameof(IlgpuKernels.ReduceRows), nameof(MaxReduce), true },
        { nameof(IlgpuKernels.ArgReduce), null, false },
        { nameof(IlgpuKernels.Softmax), null, true },
        { nameof(IlgpuKernels.SoftmaxBackward), null, true },
        { nameof(IlgpuKernels.IndexSelect), null, false },
        { nameof(IlgpuKernels.IndexAdd), null, false },
        { nameof(IlgpuKernels.Im2Col), null, false },
        { nameof(IlgpuKernels.Col2Im), null, false },
        { nameof(IlgpuKernels.AdamStep), null, false },
        { nameof(IlgpuKernels.FillRandom), null, false },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void KernelCompilesToPtx(string name, string? op, bool explicitlyGrouped)
    {
        var opType = op == null ? null : typeof(SumReduce).Assembly.GetType($"{typeof(SumReduce).Namespace}.{op}", throwOnError: true);
        string ptx = CompilePtx(Kernel(typeof(IlgpuKernels), name, opType), explicitlyGrouped);
        Assert.Contains(".target sm_80", ptx);
    }

    [Theory]
    [InlineData(nameof(IlgpuAttentionKernels.Forward))]
    [InlineData(nameof(IlgpuAttentionKernels.BackwardKeys))]
    [InlineData(nameof(IlgpuAttentionKernels.BackwardQueries))]
    public void AttentionKernelCompilesWithAccumulatorsInRegisters(string name)
    {
        string ptx = CompilePtx(Kernel(typeof(IlgpuAttentionKernels), name), explicitlyGrouped: true);
        Assert.Contains(".target sm_80", ptx);
        Assert.Contains(".shared", ptx);
        Assert.DoesNotContain(".local", ptx);
    }

    [Fact]
    public void GemmCompilesWithAccumulatorsInRegisters()
    {
        string ptx = CompilePtx(Kernel(typeof(IlgpuGemmKernel), nameof(IlgpuGemmKernel.Gemm)), explicitlyGrouped: true);
        Assert.Contains(".shared", ptx);
        Assert.DoesNotContain(".local", ptx);
    }
}
