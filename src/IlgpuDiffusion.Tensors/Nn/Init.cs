using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors.Nn;

/// <summary>PyTorch's default initialisers, drawn from a seedable generator.</summary>
public static class Init
{
    /// <summary>The generator layers use when none is passed (torch's global RNG); seed it for reproducible models.</summary>
    public static Generator Default { get; set; } = new(0);

    /// <summary>In place, no autograd: values uniform in [−bound, bound). No temporaries: a model's initial draws would
    /// otherwise stay behind in the allocator's cache, sized like its weights, not like what the model computes.</summary>
    public static void Uniform(Tensor t, float bound, Generator? generator = null)
    {
        t.FillRandom(generator ?? Default, normal: false);
        if (t.Count > 0) t.Backend.Unary<AffineOp>(t.View, t.View, t.Count, 2f * bound, -bound);
    }

    /// <summary>nn.Conv2d / nn.Linear default: kaiming_uniform(a=√5) for the weight, i.e. U(±1/√fan_in), and the same
    /// bound for the bias.</summary>
    public static void DefaultLayer(Tensor weight, Tensor? bias, int fanIn, Generator? generator = null)
    {
        float bound = 1f / MathF.Sqrt(Math.Max(1, fanIn));
        Uniform(weight, bound, generator);
        if (bias != null) Uniform(bias, bound, generator);
    }
}
