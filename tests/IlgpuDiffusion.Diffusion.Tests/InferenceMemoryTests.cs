using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>Reads the cpu allocator's global counters, so it runs alone.</summary>
[CollectionDefinition("allocator", DisableParallelization = true)]
public class AllocatorCollection { }

/// <summary>Without a graph to keep (sampling), each block's intermediates are released when it returns
/// (<see cref="TensorScope.Stage"/>): same result, a fraction of the memory.</summary>
[Collection("allocator")]
public class InferenceMemoryTests
{
    [Fact]
    public void Unet_forward_without_grad_gives_the_same_noise_with_much_less_memory()
    {
        var device = Device.Get("cpu");
        using var unet = new UNet(device, 3, ReferenceConfigs.MnistLdm);
        var x = Tensor.Randn([4, 3, 7, 7], new Generator(3), device);
        int[] t = [1, 250, 500, 999];

        float[] recorded, inferred;
        long recordedPeak, inferredPeak;
        using (var scope = new TensorScope())
        {
            device.Allocator.ResetPeak();
            long before = device.Allocator.BytesInUse;
            x.RequiresGrad = true;
            recorded = unet.Forward(x, t).ToArray();
            recordedPeak = device.Allocator.PeakBytesInUse - before;
            x.RequiresGrad = false;
        }
        using (var scope = new TensorScope())
        using (Autograd.NoGrad())
        {
            device.Allocator.ResetPeak();
            long before = device.Allocator.BytesInUse;
            inferred = unet.Forward(x, t).ToArray();
            inferredPeak = device.Allocator.PeakBytesInUse - before;
        }

        Assert.Equal(recorded, inferred);
        Assert.True(inferredPeak < recordedPeak / 3, $"peak without grad {inferredPeak >> 10} KiB, with grad {recordedPeak >> 10} KiB");
    }
}
