using System.Reflection;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime.OpenCL;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>
/// The opt-in <c>ILDM_OPENCL_FORCE_CL20=1</c> for OpenCL 3.0 devices that report neither the generic address space
/// nor OpenCL C 2.0 (Mesa's rusticl on llvmpipe), which ILGPU 1.5.3 leaves out. With it such a device is described
/// to ILGPU as an OpenCL 2.0 device with the generic address space, so ILGPU lists it and builds its kernels with
/// <c>-cl-std=CL2.0</c>, with which rusticl compiles ILGPU's <c>__generic</c> code correctly. It is a test path for
/// the OpenCL code generation and our kernels, not a supported device. Both settings are internal to ILGPU and set
/// by reflection; <see cref="Internals"/> fails loudly, naming the member, when an ILGPU version lacks them.
/// </summary>
internal static class OpenClOptIn
{
    public const string Variable = "ILDM_OPENCL_FORCE_CL20";

    public static bool Requested => Environment.GetEnvironmentVariable(Variable) == "1";

    /// <summary>Whether the context lists an OpenCL device: those ILGPU accepts itself (OpenCL C 2.0 or later and
    /// the generic address space) and, when <see cref="Requested"/>, OpenCL 3.0 devices without those reports, after
    /// <see cref="ForceCl20"/>. The one place the opt-in is applied.</summary>
    public static bool Accept(CLDevice device) => Accept(device, Requested);

    internal static bool Accept(CLDevice device, bool optedIn)
    {
        if (device.CLStdVersion >= CLBackend.MinimumVersion && device.Capabilities.GenericAddressSpace) return true;
        if (!optedIn || device.DeviceVersion < CLDeviceVersion.CL30) return false;
        ForceCl20(device);
        return true;
    }

    /// <summary>Describes the device as OpenCL 2.0 (ILGPU derives <c>-cl-std</c> from the device version) with the
    /// generic address space.</summary>
    public static void ForceCl20(CLDevice device)
    {
        var (deviceVersion, genericAddressSpace) = Internals.Value;
        deviceVersion.Invoke(device, [CLDeviceVersion.CL20]);
        genericAddressSpace.Invoke(device.Capabilities, [true]);
    }

    /// <summary>The non-public setters of <see cref="CLDevice.DeviceVersion"/> and
    /// <see cref="CLCapabilityContext.GenericAddressSpace"/>.</summary>
    public static readonly Lazy<(MethodInfo DeviceVersion, MethodInfo GenericAddressSpace)> Internals = new(() =>
        (Setter(typeof(CLDevice), nameof(CLDevice.DeviceVersion), typeof(CLDeviceVersion)),
            Setter(typeof(CLCapabilityContext), nameof(CLCapabilityContext.GenericAddressSpace), typeof(bool))));

    private static MethodInfo Setter(Type type, string property, Type valueType)
    {
        var setter = type.GetProperty(property, BindingFlags.Instance | BindingFlags.Public)?.GetSetMethod(nonPublic: true);
        if (setter != null && setter.GetParameters() is [var value] && value.ParameterType == valueType) return setter;
        throw new InvalidOperationException(
            $"{Variable}: ILGPU {type.Assembly.GetName().Version} has no settable {type.Name}.{property} of type {valueType.Name}; "
            + "the OpenCL opt-in must be adapted to this ILGPU version (or unset the variable)");
    }
}
