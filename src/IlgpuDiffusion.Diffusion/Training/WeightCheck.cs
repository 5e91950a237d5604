using System.Globalization;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>Refuses weights that would sample NaN or garbage without a word: NaN, infinities, or magnitudes no
/// trained network reaches (beyond <see cref="MaxMagnitude"/> float32 activations overflow within a few layers).</summary>
internal static class WeightCheck
{
    public const float MaxMagnitude = 1e8f;

    /// <summary>Throws an <see cref="InvalidDataException"/> naming <paramref name="path"/>, the first bad tensor
    /// and the element; <paramref name="boundMagnitude"/> false checks finiteness only (optimiser moments).</summary>
    public static void RequireSane(IReadOnlyDictionary<string, HostTensor> tensors, string path, bool boundMagnitude = true)
    {
        foreach (var (name, tensor) in tensors)
        {
            if (tensor.Floats is not { } values) continue;
            for (int i = 0; i < values.Length; i++)
            {
                float v = values[i];
                if (float.IsFinite(v) && (!boundMagnitude || Math.Abs(v) <= MaxMagnitude)) continue;
                string what = float.IsFinite(v)
                    ? string.Create(CultureInfo.InvariantCulture, $"{v:G3}, beyond ±{MaxMagnitude:G1}")
                    : v.ToString(CultureInfo.InvariantCulture);
                throw new InvalidDataException(
                    $"{path}: tensor '{name}' element {i} is {what}: the weights are damaged or come from a diverged run; "
                    + "use an earlier checkpoint or train again");
            }
        }
    }
}
