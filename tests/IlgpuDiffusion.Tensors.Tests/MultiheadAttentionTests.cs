namespace IlgpuDiffusion.Tensors.Tests;

public class MultiheadAttentionTests
{
    /// <summary>The key bias shifts each query's scores equally, so softmax makes it irrelevant: its gradient
    /// must be exactly zero (float32 round-off there turns into full-size Adam steps).</summary>
    [Fact]
    public void The_key_part_of_the_in_projection_bias_gets_an_exactly_zero_gradient()
    {
        const int e = 4;
        var generator = new Generator(3);
        Tensor Leaf(params int[] shape)
        {
            var t = Tensor.Randn(shape, generator);
            t.RequiresGrad = true;
            return t;
        }
        var x = Leaf(2, 5, e);
        var inProjWeight = Leaf(3 * e, e);
        var inProjBias = Leaf(3 * e);
        var y = Tensor.MultiheadAttention(x, x, 2, inProjWeight, inProjBias, Leaf(e, e), Leaf(e));
        (y * Tensor.Randn([2, 5, e], generator)).Sum().Backward();
        var grad = inProjBias.Grad!.ToArray();
        Assert.All(grad[e..(2 * e)], g => Assert.Equal(0f, g));
        Assert.Contains(grad[..e], g => g != 0f);
        Assert.Contains(grad[(2 * e)..], g => g != 0f);
    }
}
