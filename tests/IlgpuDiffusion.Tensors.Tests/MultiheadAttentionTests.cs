namespace IlgpuDiffusion.Tensors.Tests;

public class MultiheadAttentionTests
{
    /// <summary>As torch.nn.MultiheadAttention, the key part of the in-projection bias takes part: softmax ignores the
    /// shift it adds to a query's scores, so its gradient is zero up to float32 round-off, not left out.</summary>
    [Fact]
    public void The_key_part_of_the_in_projection_bias_gets_a_round_off_gradient()
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
        float largest = grad.Max(MathF.Abs);
        Assert.Contains(grad[e..(2 * e)], g => g != 0f);
        Assert.All(grad[e..(2 * e)], g => Assert.True(MathF.Abs(g) < 1e-5f * largest, $"key-bias gradient {g} against {largest}"));
    }
}
