using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>A step's scalar losses read back to the host in one transfer: each <see cref="Tensor.Item"/> waits for the
/// device, so a step that read its terms one by one would synchronise once per term.</summary>
public static class ScalarReadback
{
    /// <summary>The values of one-element tensors by name, in the order given: joined on the device, downloaded once.</summary>
    public static Dictionary<string, double> Read(IReadOnlyDictionary<string, Tensor> scalars)
    {
        var entries = scalars.ToList();
        if (entries.Count == 0) return [];
        float[] values;
        using (Autograd.NoGrad()) values = Tensor.Concat(entries.Select(e => e.Value.Reshape(1)).ToArray(), 0).ToArray();
        return entries.Select((e, i) => (e.Key, Value: (double)values[i])).ToDictionary(e => e.Key, e => e.Value);
    }
}
