using IlgpuDiffusion.Tensors.IO;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Tensors.Parity;

/// <summary>
/// The common part of every module case (see the parity README): weights from the synthetic rule or
/// from the case's <c>weights</c> file, inputs <c>input.NAME</c> as leaves, the loss
/// Σ_K sum(output.K · probe.K), and the tensors to compare: <c>output.K</c>, <c>grad.input.NAME</c>,
/// <c>grad.param.NAME</c>, <c>gradsum.NAME</c> = [L2 norm, sum, max |g|] (with our gradient's L1 norm beside it, see
/// <see cref="CancellingGradientSum"/>) and <c>buffer_after.NAME</c>.
/// A model-specific handler only builds the module and maps inputs to outputs.
/// </summary>
public static class ModuleCase
{
    /// <param name="forward">computes the named outputs (keys without the "output." prefix) from the named inputs.</param>
    public static Dictionary<string, Tensor> Compute(ParityCase c, Device device, Module model,
        Func<IReadOnlyDictionary<string, Tensor>, IReadOnlyDictionary<string, Tensor>> forward)
    {
        LoadWeights(c, model);
        var inputs = c.Tensors.Keys.Where(k => k.StartsWith("input.", StringComparison.Ordinal))
            .ToDictionary(k => k["input.".Length..],
                k => c.Load(k, device, requiresGrad: c.Tensor(k).DType == DType.Float32 && c.Has("grad." + k)));
        var outputs = forward(inputs);

        var result = new Dictionary<string, Tensor>();
        Tensor? loss = null;
        foreach (var (name, value) in outputs)
        {
            if (c.Has("output." + name)) result["output." + name] = value;
            if (c.Has("probe." + name) && value.RequiresGrad)
            {
                var term = (value * c.Load("probe." + name, device).Reshape(value.Shape.ToArray())).Sum();
                loss = loss == null ? term : loss + term;
            }
        }
        loss?.Backward();

        foreach (var (name, input) in inputs)
            if (c.Has("grad.input." + name)) result["grad.input." + name] = input.Grad ?? Tensor.Zeros(input.Shape.ToArray(), device);
        foreach (var (name, p) in model.NamedParameters())
        {
            var grad = p.Grad ?? Tensor.Zeros(p.Shape.ToArray(), device);
            if (c.Has("grad.param." + name)) result["grad.param." + name] = grad;
            if (!c.Has("gradsum." + name)) continue;
            (result["gradsum." + name], result[CancellingGradientSum.L1Prefix + name]) = GradSummary(grad);
        }
        foreach (var (name, buffer) in model.NamedBuffers())
            if (c.Has("buffer_after." + name)) result["buffer_after." + name] = buffer;
        return result;
    }

    /// <summary>Synthetic weights by the manifest's parameter order, or the case's PyTorch checkpoint.</summary>
    public static void LoadWeights(ParityCase c, Module model)
    {
        if (c.String("weights") is { } file)
            model.LoadStateDict(PthReader.Read(Path.Combine(c.Folder, file)), strict: true, source: file);
        else
            SyntheticWeights.Apply(c.Parameters(), model.NamedParameters().ToList(), c.Name);
    }

    /// <summary>[L2 norm, sum, max |g|] of a gradient and its L1 norm (for <see cref="CancellingGradientSum"/>), from one
    /// download, computed in double on the host.</summary>
    public static (Tensor Summary, Tensor L1) GradSummary(Tensor grad)
    {
        var g = grad.ToArray();
        double l2 = Math.Sqrt(g.Sum(v => (double)v * v)), sum = g.Sum(v => (double)v);
        double max = g.Length == 0 ? 0 : g.Max(v => Math.Abs((double)v)), l1 = g.Sum(v => Math.Abs((double)v));
        return (Tensor.FromArray([(float)l2, (float)sum, (float)max], [3], grad.Device), Tensor.FromArray([(float)l1], [1], grad.Device));
    }
}
