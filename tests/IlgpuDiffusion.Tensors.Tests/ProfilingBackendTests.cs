using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors.Tests;

public class ProfilingBackendTests
{
    [Fact]
    public void Profiled_device_computes_the_same_and_counts_calls_by_primitive_and_shape()
    {
        var profiled = Device.Get("cpu+profile");
        Assert.Same(profiled, Device.Get("CPU+profile"));
        Assert.True(profiled.IsCpu);
        var profile = Assert.IsType<ProfilingBackend>(profiled.Backend);
        profile.Reset();

        float[] a = [1, 2, 3, 4, 5, 6], b = [1, 0, -1, 2, 0.5f, 3];
        using var scope = new TensorScope();
        var expected = Tensor.FromArray(a, [2, 3], Device.Cpu).Matmul(Tensor.FromArray(b, [3, 2], Device.Cpu)).ToArray();
        var actual = Tensor.FromArray(a, [2, 3], profiled).Matmul(Tensor.FromArray(b, [3, 2], profiled)).ToArray();

        Assert.Equal(expected, actual);
        string report = profile.Report();
        Assert.Matches(@"Gemm 2x2x3 +1\.0 calls", report);
        Assert.Matches(@"Upload +2\.0 calls", report);
        Assert.Matches(@"Download +1\.0 calls", report);
        profile.Reset();
        Assert.DoesNotContain("Gemm", profile.Report());
    }
}
