namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>
/// Every differentiable op once, as a function of float inputs of fixed shapes. The same list drives the
/// finite-difference gradient checks and the executor-equality checks (tinygrad style: one helper, every op).
/// </summary>
public sealed record OpCase(string Name, int[][] Shapes, Func<Tensor[], Tensor> Apply, Domain Domain = Domain.Any)
{
    public override string ToString() => Name;
}

/// <summary>Where inputs are drawn: anywhere in [−2, 2], strictly positive [0.5, 2], or away from kinks (|x| ≥ 0.2).</summary>
public enum Domain { Any, Positive, AwayFromZero }

public static class OpCatalogue
{
    private static readonly Dictionary<string, OpCase> Cases = new OpCase[]
    {
        new("neg", [[3, 4]], x => x[0].Neg()),
        new("exp", [[3, 4]], x => x[0].Exp()),
        new("log", [[3, 4]], x => x[0].Log(), Domain.Positive),
        new("sqrt", [[3, 4]], x => x[0].Sqrt(), Domain.Positive),
        new("pow", [[3, 4]], x => x[0].Pow(2.5f), Domain.Positive),
        new("square", [[3, 4]], x => x[0].Square()),
        new("abs", [[3, 4]], x => x[0].Abs(), Domain.AwayFromZero),
        new("clamp", [[3, 4]], x => x[0].Clamp(-0.5f, 0.7f), Domain.AwayFromZero),
        new("relu", [[3, 4]], x => x[0].Relu(), Domain.AwayFromZero),
        new("leaky_relu", [[3, 4]], x => x[0].LeakyRelu(0.2f), Domain.AwayFromZero),
        new("sigmoid", [[3, 4]], x => x[0].Sigmoid()),
        new("tanh", [[3, 4]], x => x[0].Tanh()),
        new("silu", [[3, 4]], x => x[0].Silu()),
        new("affine", [[3, 4]], x => x[0].Affine(-1.5f, 0.25f)),
        // Long enough for the cpu executor's vector loops and its 1024-element chunks, tail included.
        new("silu_long", [[3, 700]], x => x[0].Silu()),
        new("tanh_long", [[3, 700]], x => x[0].Tanh()),
        new("sigmoid_long", [[3, 700]], x => x[0].Sigmoid()),
        new("relu_long", [[3, 700]], x => x[0].Relu(), Domain.AwayFromZero),
        new("square_long", [[3, 700]], x => x[0].Square()),
        new("affine_long", [[3, 700]], x => x[0].Affine(-1.5f, 0.25f)),
        new("add_broadcast", [[2, 3, 4], [3, 1]], x => x[0] + x[1]),
        new("sub_broadcast", [[4], [2, 3, 4]], x => x[0] - x[1]),
        new("mul_broadcast", [[2, 1, 4], [3, 1]], x => x[0] * x[1]),
        new("div_broadcast", [[2, 3, 4], [1, 3, 1]], x => x[0] / x[1], Domain.Positive),
        new("maximum", [[2, 3], [2, 3]], x => x[0].Maximum(x[1]), Domain.AwayFromZero),
        Comparison("eq", (a, b) => a.Eq(b)),
        Comparison("ne", (a, b) => a.Ne(b)),
        Comparison("gt", (a, b) => a.Gt(b)),
        Comparison("ge", (a, b) => a.Ge(b)),
        Comparison("lt", (a, b) => a.Lt(b)),
        Comparison("le", (a, b) => a.Le(b)),
        new("where_broadcast", [[2, 3, 4], [3, 1]], x => Tensor.Where(x[1].Gt(x[1].Mean()), x[0], x[1])),
        new("where_long", [[3, 700], [3, 700]], x => Tensor.Where(x[0].Lt(x[1]), x[0], x[1])),
        new("sum_all", [[2, 3, 4]], x => x[0].Sum()),
        new("sum_dims_0_2", [[2, 3, 4]], x => x[0].Sum([0, 2])),
        new("sum_dims_keepdim", [[2, 3, 4, 2]], x => x[0].Sum([1, 3], keepDim: true)),
        new("mean_dims", [[2, 3, 4]], x => x[0].Mean([-1, 0])),
        new("max_dim", [[3, 5]], x => x[0].Max(1)),
        new("min_dims", [[2, 3, 2]], x => x[0].Min([0, 2])),
        new("matmul", [[3, 5], [5, 4]], x => x[0].Matmul(x[1])),
        new("matmul_batched", [[2, 3, 5], [2, 5, 4]], x => x[0].Matmul(x[1])),
        new("matmul_shared_right", [[2, 3, 5], [5, 4]], x => x[0].Matmul(x[1])),
        new("matmul_transposed", [[2, 3, 5], [2, 4, 5]], x => x[0].MatmulTransposed(x[1])),
        new("linear", [[2, 3, 5], [4, 5], [4]], x => Tensor.Linear(x[0], x[1], x[2])),
        new("reshape", [[2, 6]], x => x[0].Reshape(3, -1).Mul(x[0].Reshape(3, 4))),
        new("permute", [[2, 3, 4]], x => x[0].Permute(2, 0, 1)),
        new("transpose", [[2, 3, 4]], x => x[0].Transpose(0, 2)),
        new("expand", [[3, 1]], x => x[0].Expand([2, 3, 4])),
        new("concat", [[2, 3], [2, 2]], x => Tensor.Concat([x[0], x[1], x[0]], 1)),
        new("slice", [[4, 5]], x => x[0].Slice(1, 1, 3)),
        new("chunk", [[5, 2]], x => x[0].Chunk(2, 0)[1]),
        new("unsqueeze_flatten", [[2, 3, 2]], x => x[0].Unsqueeze(1).Flatten(2)),
        new("index_select", [[4, 3]], x => x[0].IndexSelect(0, Tensor.FromArray(new[] { 2, 0, 2, 3 }, [4], x[0].Device))),
        new("index_select_inner", [[2, 4, 3]], x => x[0].IndexSelect(1, Tensor.FromArray(new[] { 1, 1, 3 }, [3], x[0].Device))),
        new("softmax_last", [[3, 5]], x => x[0].Mul(3f).Softmax(-1)),
        new("softmax_dim1", [[2, 4, 3]], x => x[0].Softmax(1)),
        new("group_norm_4d", [[2, 4, 3, 2], [4], [4]], x => Tensor.GroupNorm(x[0], 2, x[1], x[2])),
        new("group_norm_3d_no_affine", [[3, 6, 5]], x => Tensor.GroupNorm(x[0], 3, null, null)),
        new("attention", [[1, 2, 2, 4], [1, 2, 3, 4], [1, 2, 3, 4]], x => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], 0.5f)),
        new("multihead_self_attention", [[2, 3, 4], [12, 4], [12], [4, 4], [4]],
            x => Tensor.MultiheadAttention(x[0], x[0], 2, x[1], x[2], x[3], x[4])),
        new("unfold", [[2, 2, 5, 4]], x => Tensor.Unfold(x[0], 3, 2, 2, new Padding2d(1, 0, 0, 1))),
        new("max_pool2d", [[2, 2, 6, 5]], x => Tensor.MaxPool2d(x[0], 2, 2)),
        new("max_pool2d_onnx_pads", [[1, 3, 7, 7]], x => Tensor.MaxPool2d(x[0], 3, 2, new Padding2d(1, 1, 0, 0))),
        new("mse_loss", [[2, 5], [2, 5]], x => Tensor.MseLoss(x[0], x[1])),
    }.ToDictionary(c => c.Name);

    /// <summary>A comparison has no gradient, so the case selects with it: x[0] where each element compares true with
    /// the first of its row (equal to itself, so every comparison holds somewhere and fails somewhere), else x[1].</summary>
    private static OpCase Comparison(string name, Func<Tensor, Tensor, Tensor> compare) =>
        new(name, [[3, 4], [4]], x => Tensor.Where(compare(x[0], x[0].Slice(1, 0, 1)), x[0], x[1]));

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var n in Cases.Keys) data.Add(n);
        return data;
    }

    public static TheoryData<string, string> NamesOnDevices()
    {
        var data = new TheoryData<string, string>();
        foreach (var d in TestDevices.Names)
            foreach (var n in Cases.Keys) data.Add(n, d);
        return data;
    }

    public static OpCase Get(string name) => Cases[name];

    /// <summary>Deterministic inputs for a case (a fixed generator per case name and input number).</summary>
    public static float[][] Inputs(OpCase c)
    {
        var rng = new Random(c.Name.Aggregate(17, (h, ch) => h * 31 + ch));
        return c.Shapes.Select(shape =>
        {
            var values = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++)
            {
                float u = (float)rng.NextDouble();
                values[i] = c.Domain switch
                {
                    Domain.Positive => 0.5f + 1.5f * u,
                    Domain.AwayFromZero => (u < 0.5f ? -1 : 1) * (0.2f + 1.6f * u),
                    _ => -2f + 4f * u,
                };
            }
            return values;
        }).ToArray();
    }
}
