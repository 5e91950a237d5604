using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;

/// <summary>The process-wide ILGPU context and the devices it found.</summary>
internal static class IlgpuRuntime
{
    /// <summary>CPU accelerator shape. ILGPU runs every thread of a multiprocessor as an OS thread and syncs them
    /// all at each launch, and a group barrier costs about 8 µs per participating thread, so the backend
    /// launches the same kernels with single-thread groups where it can (see <see cref="IlgpuBackend"/>).
    /// Eight threads is what the attention kernels need (one row of 8 lanes); one multiprocessor per core.</summary>
    private const int CpuWarpSize = 8, CpuWarpsPerGroup = 1;

    private static int CpuMultiprocessors => Environment.ProcessorCount;

    private static readonly Lazy<Context> SharedContext = new(CreateContext, LazyThreadSafetyMode.ExecutionAndPublication);

    public static Context Context => SharedContext.Value;

    private static Context CreateContext()
    {
        InstallNativeLibraryFallback();
        return Context.Create(builder => builder
            .CPU(new CPUDevice(CpuWarpSize, CpuWarpsPerGroup, CpuMultiprocessors))
            .Cuda()
            .OpenCL(OpenClOptIn.Accept)
            .EnableAlgorithms());
    }

    /// <summary>ILGPU asks for libcuda.so / libOpenCL.so, which only development packages install;
    /// drivers ship the versioned .so.1. Fall back to those when the default lookup fails.</summary>
    private static void InstallNativeLibraryFallback()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Context).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Another component already installed a resolver for ILGPU; keep it.
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (NativeLibrary.TryLoad(libraryName, assembly, searchPath, out IntPtr handle)) return handle;
        string? versioned =
            libraryName.Contains("cuda", StringComparison.OrdinalIgnoreCase) ? "libcuda.so.1" :
            libraryName.Contains("opencl", StringComparison.OrdinalIgnoreCase) ? "libOpenCL.so.1" : null;
        return versioned != null && NativeLibrary.TryLoad(versioned, out handle) ? handle : IntPtr.Zero;
    }

    /// <summary>The device named <c>kind:index</c> ("ilgpu-cpu" has no index).</summary>
    public static string DeviceName(string kind, int index) => kind == "ilgpu-cpu" ? kind : $"{kind}:{index}";

    /// <summary>Every usable device with its engine name, in context order.</summary>
    public static IReadOnlyList<(string Name, ILGPU.Runtime.Device Device)> Devices()
    {
        var list = new List<(string, ILGPU.Runtime.Device)>();
        int cuda = 0, openCL = 0;
        bool cpuListed = false;
        foreach (var device in Context.Devices)
        {
            switch (device.AcceleratorType)
            {
                case AcceleratorType.Cuda: list.Add((DeviceName("cuda", cuda++), device)); break;
                case AcceleratorType.OpenCL: list.Add((DeviceName("opencl", openCL++), device)); break;
                case AcceleratorType.CPU when !cpuListed: list.Add(("ilgpu-cpu", device)); cpuListed = true; break;
            }
        }
        return list;
    }

    public static DeviceInfo Describe(string name, ILGPU.Runtime.Device device)
    {
        long memory = device.AcceleratorType == AcceleratorType.CPU
            ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes // the CPU "device" reports no meaningful size
            : device.MemorySize;
        bool float64 = device is not CLDevice openCL || openCL.Capabilities.Float64; // ILGPU's CPU and CUDA always have it
        return new DeviceInfo(name, $"ILGPU {device.AcceleratorType}: {device.Name}{(float64 ? "" : " (no float64)")}", memory,
            device.NumMultiprocessors, float64);
    }
}
