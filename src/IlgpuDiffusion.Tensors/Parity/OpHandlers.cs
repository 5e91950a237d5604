using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Tensors.Parity;

/// <summary>
/// The engine's op cases: each reads its inputs and hyper-parameters from the case, computes the
/// outputs and the gradients of sum(y · probe) (plus the extra loss terms a description names), and
/// returns them under the reference's tensor names.
/// </summary>
public static class OpHandlers
{
    public static IReadOnlyList<IParityHandler> All { get; } =
    [
        new ParityHandler(["conv2d_"], Conv2d),
        new ParityHandler(["conv_transpose2d_"], ConvTranspose2d),
        new ParityHandler(["group_norm_"], GroupNorm),
        new ParityHandler(["batch_norm2d"], BatchNorm2d),
        new ParityHandler(["linear"], Linear),
        new ParityHandler(["activations"], Activations),
        new ParityHandler(["mha_"], MultiheadAttention),
        new ParityHandler(["adam"], Adam),
    ];

    /// <summary>Loads the named inputs as leaves that require gradients.</summary>
    private static Dictionary<string, Tensor> Leaves(ParityCase c, Device device, params string[] names) =>
        names.Where(c.Has).ToDictionary(n => n, n => c.Load(n, device, requiresGrad: true));

    /// <summary>Back-propagates sum(y · probe) (+ extra) and collects y and grad.NAME for every leaf.</summary>
    private static Dictionary<string, Tensor> WithGradients(ParityCase c, Device device, Dictionary<string, Tensor> leaves,
        Tensor y, string outputName = "y", string probeName = "probe", Tensor? extraLoss = null)
    {
        var loss = (y * c.Load(probeName, device)).Sum();
        if (extraLoss != null) loss = loss + extraLoss;
        loss.Backward();
        var result = new Dictionary<string, Tensor> { [outputName] = y };
        foreach (var (name, leaf) in leaves)
            if (c.Has("grad." + name)) result["grad." + name] = leaf.Grad!;
        return result;
    }

    private static Dictionary<string, Tensor> Conv2d(ParityCase c, Device d)
    {
        var p = Leaves(c, d, "x", "w", "b");
        var y = Tensor.Conv2d(p["x"], p["w"], p.GetValueOrDefault("b"), c.Int("stride", 1), c.Int("padding", 0));
        return WithGradients(c, d, p, y);
    }

    private static Dictionary<string, Tensor> ConvTranspose2d(ParityCase c, Device d)
    {
        var p = Leaves(c, d, "x", "w", "b");
        var y = Tensor.ConvTranspose2d(p["x"], p["w"], p.GetValueOrDefault("b"), c.Int("stride", 1), c.Int("padding", 0));
        return WithGradients(c, d, p, y);
    }

    private static Dictionary<string, Tensor> GroupNorm(ParityCase c, Device d)
    {
        var p = Leaves(c, d, "x", "w", "b");
        var y = Tensor.GroupNorm(p["x"], c.Int("groups"), p["w"], p["b"], c.Float("eps", 1e-5f));
        return WithGradients(c, d, p, y);
    }

    private static Dictionary<string, Tensor> BatchNorm2d(ParityCase c, Device d)
    {
        var p = Leaves(c, d, "x", "w", "b");
        var mean = c.Load("running_mean_before", d);
        var variance = c.Load("running_var_before", d);
        float momentum = c.Float("momentum", 0.1f), eps = c.Float("eps", 1e-5f);
        Tensor yEval;
        using (Autograd.NoGrad()) yEval = Tensor.BatchNorm(p["x"], mean, variance, p["w"], p["b"], training: false, momentum, eps);
        var yTrain = Tensor.BatchNorm(p["x"], mean, variance, p["w"], p["b"], training: true, momentum, eps);
        var result = WithGradients(c, d, p, yTrain, "y_train");
        result["y_eval"] = yEval;
        result["running_mean_after"] = mean;
        result["running_var_after"] = variance;
        return result;
    }

    private static Dictionary<string, Tensor> Linear(ParityCase c, Device d)
    {
        var p = Leaves(c, d, "x", "w", "b");
        return WithGradients(c, d, p, Tensor.Linear(p["x"], p["w"], p.GetValueOrDefault("b")));
    }

    private static Dictionary<string, Tensor> Activations(ParityCase c, Device d)
    {
        var result = new Dictionary<string, Tensor>();
        float slope = c.Float("negative_slope", 0.01f);
        string leakyName = c.Tensors.Keys.First(k => k.StartsWith("leaky_relu", StringComparison.Ordinal));
        foreach (var (name, f) in new (string, Func<Tensor, Tensor>)[] { ("silu", x => x.Silu()), (leakyName, x => x.LeakyRelu(slope)) })
        {
            var x = c.Load("x", d, requiresGrad: true);
            var y = f(x);
            (y * c.Load("probe", d)).Sum().Backward();
            result[name] = y;
            result[$"grad.{name}.x"] = x.Grad!;
        }
        return result;
    }

    private static Dictionary<string, Tensor> MultiheadAttention(ParityCase c, Device d)
    {
        var p = Leaves(c, d, "q", "kv");
        var parameters = c.Parameters();
        var weights = parameters.Select((e, k) =>
        {
            var t = Tensor.FromArray(SyntheticWeights.Generate(k, e.Name, e.Shape), e.Shape, d);
            t.RequiresGrad = true;
            return (e.Name, Tensor: t);
        }).ToDictionary(e => e.Name, e => e.Tensor);
        var q = p["q"];
        var kv = p.GetValueOrDefault("kv") ?? q;
        var y = Tensor.MultiheadAttention(q, kv, c.Int("num_heads"), weights["in_proj_weight"], weights["in_proj_bias"],
            weights["out_proj.weight"], weights["out_proj.bias"]);
        var result = WithGradients(c, d, p, y);
        foreach (var (name, w) in weights) result["grad.param." + name] = w.Grad!;
        return result;
    }

    private static Dictionary<string, Tensor> Adam(ParityCase c, Device d)
    {
        var param = c.Load("p0", d, requiresGrad: true);
        var betas = c.Floats("betas");
        using var adam = new Adam([param], c.Float("lr"), betas[0], betas[1], c.Float("eps", 1e-8f), c.Float("weight_decay", 0f));
        var result = new Dictionary<string, Tensor>();
        for (int step = 1; c.Has($"g{step}"); step++)
        {
            param.Grad = c.Load($"g{step}", d);
            adam.Step();
            result[$"p{step}"] = param.Detach().Clone(); // a copy: the parameter keeps changing
        }
        return result;
    }
}
