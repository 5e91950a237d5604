namespace IlgpuDiffusion.Tensors.Parity;

/// <summary>The fixtures' synthetic-weight rule (see the parity README): parameter k, element i gets a
/// value from a splitmix-style hash of (k, i), scaled by fan-in for matrices and centred on 1 for 1-D weights.</summary>
public static class SyntheticWeights
{
    public static float[] Generate(int parameterIndex, string name, int[] shape)
    {
        long count = 1;
        foreach (int d in shape) count *= d;
        var values = new float[count];
        long fanIn = 1;
        for (int d = 1; d < shape.Length; d++) fanIn *= shape[d];
        double scale = Math.Sqrt(3.0 / fanIn);
        bool isWeight = name.EndsWith("weight", StringComparison.Ordinal);
        for (long i = 0; i < count; i++)
        {
            ulong x = ((ulong)parameterIndex << 32) ^ (ulong)i;
            x ^= x >> 33; x *= 0xff51afd7ed558ccdUL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53UL; x ^= x >> 33;
            double u = (x >> 40) / 16777216.0;
            double value = shape.Length == 1
                ? (isWeight ? 1 + 0.5 * (2 * u - 1) : 0.1 * (2 * u - 1))
                : (2 * u - 1) * scale;
            values[i] = (float)value;
        }
        return values;
    }

    /// <summary>Fills <paramref name="parameters"/> (in the manifest's order) by the rule; names and shapes must match.</summary>
    public static void Apply(
        IReadOnlyList<(string Name, int[] Shape)> manifestOrder, IReadOnlyList<(string Name, Tensor Tensor)> parameters, string caseName)
    {
        var byName = parameters.ToDictionary(p => p.Name, p => p.Tensor);
        for (int k = 0; k < manifestOrder.Count; k++)
        {
            var (name, shape) = manifestOrder[k];
            if (!byName.TryGetValue(name, out var t))
                throw new InvalidDataException($"case '{caseName}': the model has no parameter '{name}'");
            if (!t.Shape.SequenceEqual(shape))
                throw new InvalidDataException($"case '{caseName}': parameter '{name}' has shape {Tensor.ShapeString(t.Shape)}, " +
                    $"the manifest says {Tensor.ShapeString(shape)}");
            t.CopyFrom(Generate(k, name, shape));
        }
        if (byName.Count != manifestOrder.Count)
            throw new InvalidDataException(
                $"case '{caseName}': the model has {byName.Count} parameters, the manifest lists {manifestOrder.Count}");
    }
}
