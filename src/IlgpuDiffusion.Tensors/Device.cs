using System.Collections.Concurrent;
using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Cpu;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;

namespace IlgpuDiffusion.Tensors;

/// <summary>
/// Where tensors live and ops run: an executor (<see cref="IBackend"/>) plus its caching allocator.
/// Names: <c>cpu</c> (managed SIMD), <c>cuda[:N]</c>, <c>opencl[:N]</c> (ILGPU kernels on a GPU),
/// <c>ilgpu-cpu</c> (the same ILGPU kernels on ILGPU's CPU accelerator; slow, for tests) and
/// <c>auto</c> (cuda, then opencl, then cpu). Any name with the suffix <c>+profile</c> (<c>cuda+profile</c>) is that
/// executor wrapped in a <see cref="ProfilingBackend"/>. One instance per name per process.
/// </summary>
public sealed class Device
{
    private const string ProfileSuffix = "+profile";

    private static readonly ConcurrentDictionary<string, Lazy<Device>> Opened = new();

    private Device(string name, IBackend backend)
    {
        Name = name;
        Backend = backend;
        Allocator = new CachingAllocator(backend);
    }

    public string Name { get; }
    public IBackend Backend { get; }
    public CachingAllocator Allocator { get; }
    public DeviceInfo Info => Backend.Info;
    public bool IsCpu => (Backend is ProfilingBackend profiling ? profiling.Inner : Backend) is CpuBackend;

    public static Device Cpu => Get("cpu");

    /// <summary>Opens (once) the device with this name; a name that is not present is an error listing those that are.</summary>
    public static Device Get(string name)
    {
        string canonical = Canonical(name);
        return Opened.GetOrAdd(canonical, n => new Lazy<Device>(() => Open(n))).Value;
    }

    /// <summary>Every device present on this machine: cpu first, then what ILGPU finds.</summary>
    public static IReadOnlyList<DeviceInfo> Available()
    {
        var list = new List<DeviceInfo> { Get("cpu").Info };
        list.AddRange(IlgpuBackend.Enumerate());
        return list;
    }

    private static string Canonical(string name)
    {
        string n = name.Trim().ToLowerInvariant();
        if (n == "auto")
        {
            var present = IlgpuBackend.Enumerate().Select(d => d.Name).ToHashSet();
            return present.Contains("cuda:0") ? "cuda:0" : present.Contains("opencl:0") ? "opencl:0" : "cpu";
        }
        if (n.EndsWith(ProfileSuffix, StringComparison.Ordinal)) return Canonical(n[..^ProfileSuffix.Length]) + ProfileSuffix;
        return n is "cuda" or "opencl" ? n + ":0" : n;
    }

    private static Device Open(string name) => new(name, OpenBackend(name));

    private static IBackend OpenBackend(string name)
    {
        if (name.EndsWith(ProfileSuffix, StringComparison.Ordinal)) return new ProfilingBackend(OpenBackend(name[..^ProfileSuffix.Length]));
        if (name == "cpu") return new CpuBackend();
        if (name == "ilgpu-cpu") return IlgpuBackend.Create("ilgpu-cpu", 0);
        int colon = name.IndexOf(':');
        if (colon > 0 && name[..colon] is "cuda" or "opencl" && int.TryParse(name[(colon + 1)..], out int index) && index >= 0)
            return IlgpuBackend.Create(name[..colon], index);
        throw new ArgumentException(
            $"unknown device '{name}'; devices present: {string.Join(", ", Available().Select(d => d.Name))} (and 'auto')");
    }

    public override string ToString() => Name;
}
