using System.Reflection;
using System.Runtime.CompilerServices;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;

namespace IlgpuDiffusion.Tensors.Tests.Ilgpu;

/// <summary>The OpenCL path without an OpenCL device: every kernel compiles to OpenCL C for a device without float64,
/// and the opt-in for devices without the generic address space (<see cref="OpenClOptIn"/>) still reaches the ILGPU
/// internals it sets.</summary>
public sealed class IlgpuOpenClTests
{
    /// <summary>OpenCL C 2.0 with the generic address space and nothing else: no float64 (llvmpipe, Intel Arc).</summary>
    private static readonly Lazy<CLBackend> WithoutFloat64 = new(() => new CLBackend(IlgpuRuntime.Context,
        new CLCapabilityContext(float16: false, float64: false, genericAddressSpace: true, int64_Atomics: false, subGroups: false),
        CLDeviceVendor.Other, CLCVersion.CL20));

    private static readonly Type[] KernelClasses =
        [typeof(IlgpuKernels), typeof(IlgpuNormKernels), typeof(IlgpuAttentionKernels), typeof(IlgpuGemmKernel)];

    /// <summary>The kernels that compute in double, which the backend launches only on devices with float64: the
    /// float64-accumulating GEMM in double (elsewhere float-float:
    /// <see cref="IlgpuBackendTests.Gemm_float64_accumulation_runs_in_float_float_without_float64"/>) and the split-K sum
    /// in double (elsewhere compensated in float).</summary>
    private static readonly (string Kernel, Type? Argument)[] NeedFloat64 =
        [(nameof(IlgpuGemmKernel.GemmFloat64), typeof(DoubleSum)), (nameof(IlgpuGemmKernel.SumSplits), typeof(DoubleSum))];

    /// <summary>Every kernel (public static void method of a kernel class), each generic one with every struct of the
    /// engine that meets its constraint (every op, tile shape and split sum), as (class, kernel, type argument).</summary>
    public static TheoryData<string, string, string?> Kernels()
    {
        var data = new TheoryData<string, string, string?>();
        foreach (var type in KernelClasses)
            foreach (var kernel in type.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.ReturnType == typeof(void)))
            {
                Type?[] arguments = kernel.IsGenericMethodDefinition ? [.. Satisfying(kernel.GetGenericArguments().Single())] : [null];
                foreach (var argument in arguments.Where(a => !NeedFloat64.Contains((kernel.Name, a))))
                    data.Add(type.Name, kernel.Name, argument?.FullName);
            }
        return data;
    }

    /// <summary>The engine's structs that can stand for <paramref name="parameter"/>, generic ones closed over every
    /// non-generic struct that can stand for their own parameter (<c>CompareOp&lt;IsLess&gt;</c>).</summary>
    private static IEnumerable<Type> Satisfying(Type parameter)
    {
        var structs = typeof(IBackend).Assembly.GetTypes().Where(t => t.IsValueType && !t.IsNested).ToList();
        var plain = structs.Where(t => !t.IsGenericTypeDefinition).ToList();
        var closed = structs.Where(t => t.IsGenericTypeDefinition && t.GetGenericArguments().Length == 1)
            .SelectMany(generic => plain.Where(a => Meets(generic.GetGenericArguments()[0], a)).Select(a => generic.MakeGenericType(a)));
        return plain.Concat(closed).Where(t => Meets(parameter, t));
    }

    private static bool Meets(Type parameter, Type type) => parameter.GetGenericParameterConstraints().All(c => c.IsAssignableFrom(type));

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_OpenCL_C_without_float64(string kernelClass, string kernel, string? typeArgument)
    {
        var method = KernelClasses.Single(t => t.Name == kernelClass).GetMethod(kernel, BindingFlags.Public | BindingFlags.Static)!;
        if (typeArgument != null) method = method.MakeGenericMethod(typeof(IBackend).Assembly.GetType(typeArgument, throwOnError: true)!);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
        // ILGPU throws CapabilityNotSupportedException for a double anywhere in the kernel.
        var compiled = (CLCompiledKernel)WithoutFloat64.Value.Compile(entry, KernelSpecialization.Empty);
        Assert.Contains("kernel void", compiled.Source);
        Assert.DoesNotContain("double", compiled.Source);
    }

    [Fact]
    public void The_float64_kernels_do_not_compile_without_float64()
    {
        foreach (var (kernel, argument) in NeedFloat64)
        {
            var method = typeof(IlgpuGemmKernel).GetMethod(kernel)!;
            if (argument != null) method = method.MakeGenericMethod(argument);
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var error = Assert.ThrowsAny<Exception>(() => WithoutFloat64.Value.Compile(entry, KernelSpecialization.Empty));
            Assert.Contains("Float64", error.ToString());
        }
    }

    // ---- the opt-in ----

    /// <summary>A CLDevice as ILGPU describes an OpenCL 3.0 device that reports no generic address space (rusticl on
    /// llvmpipe), built without a device: the constructor queries the driver.</summary>
    private static CLDevice Undescribed(CLDeviceVersion version)
    {
        var device = (CLDevice)RuntimeHelpers.GetUninitializedObject(typeof(CLDevice));
        OpenClOptIn.Internals.Value.DeviceVersion.Invoke(device, [version]);
        var capabilities = new CLCapabilityContext(float16: false, float64: false, genericAddressSpace: false, int64_Atomics: false,
            subGroups: false);
        var capabilitiesSetter = typeof(ILGPU.Runtime.Device).GetProperty(nameof(ILGPU.Runtime.Device.Capabilities))!.GetSetMethod(true);
        Assert.NotNull(capabilitiesSetter); // ILGPU internals this test relies on
        capabilitiesSetter.Invoke(device, [capabilities]);
        return device;
    }

    /// <summary>Fails when an ILGPU update renames, retypes or drops what the opt-in sets, or stops deriving
    /// <c>-cl-std</c> (<see cref="CLDevice.CLStdVersion"/>) from the device version.</summary>
    [Fact]
    public void Opt_in_describes_an_OpenCL_3_device_as_OpenCL_2_with_the_generic_address_space()
    {
        var device = Undescribed(CLDeviceVersion.CL30);
        Assert.Equal(CLCVersion.CL30, device.CLStdVersion);
        Assert.False(OpenClOptIn.Accept(device, optedIn: false));
        Assert.True(OpenClOptIn.Accept(device, optedIn: true));
        Assert.Equal(CLDeviceVersion.CL20, device.DeviceVersion);
        Assert.Equal(CLCVersion.CL20, device.CLStdVersion);
        Assert.True(device.Capabilities.GenericAddressSpace);
        Assert.True(OpenClOptIn.Accept(device, optedIn: false)); // now what ILGPU accepts itself
    }

    [Fact]
    public void Opt_in_leaves_out_devices_before_OpenCL_3()
    {
        var device = Undescribed(CLDeviceVersion.CL12);
        Assert.False(OpenClOptIn.Accept(device, optedIn: true));
        Assert.False(device.Capabilities.GenericAddressSpace);
        Assert.Equal(CLDeviceVersion.CL12, device.DeviceVersion);
    }

    /// <summary>With the opt-in set (CI sets it next to rusticl), an OpenCL device is listed and its kernels run.</summary>
    [SkippableFact]
    public void Opted_in_OpenCL_device_is_listed_and_runs_a_kernel()
    {
        Skip.IfNot(OpenClOptIn.Requested, $"{OpenClOptIn.Variable} is not set");
        var device = TestDevices.Open("opencl");
        var x = Tensor.FromArray([1f, 2f, 3f], [3], device);
        Assert.Equal([3f, 5f, 7f], (x * 2f + 1f).ToArray());
    }
}
