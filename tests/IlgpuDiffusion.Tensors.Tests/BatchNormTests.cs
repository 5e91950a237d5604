using IlgpuDiffusion.Tensors.IO;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Tensors.Tests;

public class BatchNormTests
{
    /// <summary>num_batches_tracked counts training forwards (not evaluation ones) and continues from a loaded
    /// state dict, although the layer keeps its count on the host between steps.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Num_batches_tracked_counts_training_forwards_and_follows_a_loaded_state(string device)
    {
        var dev = TestDevices.Open(device);
        using var scope = new TensorScope();
        using var norm = new BatchNorm2d(dev, 2);
        var x = Tensor.Randn([3, 2, 2, 2], new Generator(7), dev);

        norm.Forward(x);
        norm.Forward(x);
        Assert.Equal(2, norm.NumBatchesTracked.ToIntArray()[0]);
        norm.Eval();
        norm.Forward(x);
        Assert.Equal(2, norm.NumBatchesTracked.ToIntArray()[0]);

        var state = norm.StateDictToHost().ToDictionary(kv => kv.Key, kv => kv.Value);
        state["num_batches_tracked"] = HostTensor.FromInts([], [41]);
        norm.LoadStateDict(state);
        norm.Train();
        norm.Forward(x);
        Assert.Equal(42, norm.NumBatchesTracked.ToIntArray()[0]);
    }
}
