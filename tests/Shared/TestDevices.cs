using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends.Ilgpu;
using Xunit;

namespace IlgpuDiffusion.TestSupport;

/// <summary>The executors every op test runs on: cpu and ilgpu-cpu always; cuda and opencl when present,
/// otherwise the test is reported as skipped with the reason.</summary>
public static class TestDevices
{
    public static readonly string[] Names = ["cpu", "ilgpu-cpu", "cuda", "opencl"];

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var n in Names) data.Add(n);
        return data;
    }

    private static readonly Lazy<HashSet<string>> Present = new(() =>
        IlgpuBackend.Enumerate().Select(d => d.Name.Split(':')[0]).Append("cpu").ToHashSet());

    /// <summary>The device, or a skip when this machine has none of that kind.</summary>
    public static Device Open(string name)
    {
        Skip.IfNot(Present.Value.Contains(name), $"no {name} device on this machine");
        return Device.Get(name);
    }
}
