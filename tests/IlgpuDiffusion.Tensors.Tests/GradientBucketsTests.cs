using IlgpuDiffusion.Tensors.Distributed;

namespace IlgpuDiffusion.Tensors.Tests;

public class GradientBucketsTests
{
    /// <summary>Records what it is asked to sum, and when.</summary>
    private sealed class RecordingReducer(Func<string> moment) : IGradientReducer
    {
        public List<(IReadOnlyList<Tensor> Gradients, string When)> Started { get; } = [];
        public int Finished { get; private set; }
        public string Name => "recording";
        public void Start(IReadOnlyList<Tensor> gradients) => Started.Add((gradients, moment()));
        public void Progress() { }
        public void Finish() => Finished++;
        public void Dispose() { }
    }

    /// <summary>Four 800 KB layers: the last alone fills the 1 MiB first bucket, which starts while the backward pass still
    /// runs; the second bucket holds a parameter the pass never reaches, so it starts only when the step finishes.</summary>
    [Fact]
    public void A_bucket_starts_during_the_backward_pass_once_its_gradients_are_final()
    {
        const int size = 200_000;
        var layers = Enumerable.Range(0, 4).Select(i => TestTensors.Leaf(Enumerable.Repeat(0.9f - 0.1f * i, size).ToArray(), size))
            .ToArray();
        var unused = TestTensors.Leaf([1f, 2f], 2);
        bool backwardDone = false;
        var reducer = new RecordingReducer(() => backwardDone ? "after the pass" : $"first layer's gradient: {layers[0].Grad != null}");
        using var buckets = new GradientBuckets([unused, .. layers], reducer);
        var h = Tensor.Full([size], 0.5f, Device.Cpu);
        foreach (var w in layers) h = (h * w).Tanh();

        h.Sum().Backward();
        backwardDone = true;
        Assert.Single(reducer.Started);
        buckets.Finish();

        Assert.Equal(2, buckets.Count);
        Assert.Equal(1, reducer.Finished);
        Assert.Equal(["first layer's gradient: False", "after the pass"], reducer.Started.Select(s => s.When));
        Assert.Equal([layers[3].Grad!], reducer.Started[0].Gradients);
        Assert.Equal([layers[2].Grad!, layers[1].Grad!, layers[0].Grad!], reducer.Started[1].Gradients); // unused's: none
        layers[3].Sum().Backward(); // the hooks are gone
        Assert.Equal(2, reducer.Started.Count);
    }
}
