namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>Runs an <see cref="OpCase"/> on a device: output and the gradients of sum(y · probe).</summary>
public static class OpChecks
{
    public static (float[] Output, float[][] Grads) Run(OpCase c, float[][] inputs, Device device)
    {
        using var scope = new TensorScope();
        var xs = c.Shapes.Select((s, i) => Tensor.FromArray(inputs[i], s, device)).ToArray();
        foreach (var x in xs) x.RequiresGrad = true;
        var y = c.Apply(xs);
        var probe = Tensor.FromArray(Probe(y.Count), y.Shape.ToArray(), device);
        y.Backward(probe);
        return (y.ToArray(), xs.Select(x => x.Grad!.ToArray()).ToArray());
    }

    /// <summary>sum(y · probe) in double, without autograd.</summary>
    public static double Loss(OpCase c, float[][] inputs, Device device)
    {
        using var scope = new TensorScope();
        var xs = c.Shapes.Select((s, i) => Tensor.FromArray(inputs[i], s, device)).ToArray();
        var y = c.Apply(xs).ToArray();
        var probe = Probe(y.Length);
        double loss = 0;
        for (int i = 0; i < y.Length; i++) loss += (double)y[i] * probe[i];
        return loss;
    }

    public static float[] Probe(int n) => Enumerable.Range(0, n).Select(i => 0.5f + 0.25f * MathF.Sin(1.7f * i + 0.3f)).ToArray();

    public static double RelativeL2(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            diff += Math.Pow((double)actual[i] - expected[i], 2);
            norm += Math.Pow(expected[i], 2);
        }
        return Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-12);
    }
}
