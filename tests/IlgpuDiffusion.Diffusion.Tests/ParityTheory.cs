using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Parity;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>Theory data of the parity suites: every fixture case a runner knows, on every executor with the
/// float32 accumulation training uses, and on cpu also with float64 accumulation (the references' arithmetic;
/// see <see cref="Tensors.Precision"/>). ILGPU's CPU accelerator and OpenCL (in CI rusticl's llvmpipe, also on the CPU)
/// take only the cases <paramref name="onIlgpuCpu"/> accepts; `ildm parity --device opencl` checks all of them.</summary>
internal static class ParityTheory
{
    public static TheoryData<string, string, GemmAccumulation> Cases(ParityRunner runner, Func<string, bool> onIlgpuCpu)
    {
        var data = new TheoryData<string, string, GemmAccumulation>();
        foreach (var device in TestDevices.Names)
            foreach (var c in ParityCase.ReadManifest(Fixtures.ParityFolder))
                if (runner.HandlerFor(c.Name) != null && (device is not ("ilgpu-cpu" or "opencl") || onIlgpuCpu(c.Name)))
                {
                    data.Add(c.Name, device, GemmAccumulation.Float32);
                    if (device == "cpu") data.Add(c.Name, device, GemmAccumulation.Float64);
                }
        return data;
    }
}
