using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors.Parity;

/// <summary>
/// Under float32 accumulation, the sum entry of a gradient summary <c>gradsum.NAME</c> = [L2 norm, sum, max |g|] is
/// checked on its own scale. Float32 rounding in the products behind a gradient is proportional to the magnitudes
/// summed, so the error of Σ g sits at the scale of Σ |g|, not of |Σ g|: where the sum cancels (lpips_vgg16's
/// net.slice3.12.weight: 589,824 elements, Σ g = 0.0025, Σ |g| = 3.0) ordinary float32 rounding is magnified about
/// 1,200 times inside the summary's relative L2 error. There the sum's error is measured as |Δ sum| / ‖our g‖₁,
/// and the L2 norm and max |g| keep the relative L2 error between themselves. Float64 accumulation keeps the
/// fixture README's metric for the whole summary.
/// </summary>
public static class CancellingGradientSum
{
    /// <summary>Computed-only entries <c>gradl1.NAME</c>: the L1 norm of our gradient NAME, which the rule needs and no
    /// fixture holds; <see cref="ModuleCase"/> adds one beside each <c>gradsum.NAME</c>.</summary>
    public const string L1Prefix = "gradl1.";

    public const string Note = "cancelling gradient sum under float32 accumulation: |Δ sum| / ‖our gradient‖₁";

    private const string SummaryPrefix = "gradsum.";

    /// <summary>The two comparisons replacing the summary's relative L2 error (see the class), or null when the rule
    /// does not apply: float64 accumulation, not a summary, or no L1 norm computed for it.</summary>
    public static IReadOnlyList<TensorComparison>? Compare(ParityCase c, string name, IReadOnlyDictionary<string, Tensor> computed,
        GemmAccumulation accumulation)
    {
        if (accumulation != GemmAccumulation.Float32 || !name.StartsWith(SummaryPrefix, StringComparison.Ordinal)
            || !computed.TryGetValue(L1Prefix + name[SummaryPrefix.Length..], out var l1)) return null;
        var ours = computed[name].ToArray();
        var reference = c.Tensor(name).Floats;
        if (reference is not { Length: 3 } || ours.Length != 3) return null;
        double sumError = Math.Abs((double)ours[1] - reference[1]) / Math.Max(l1.ToArray()[0], 1e-12);
        return
        [
            new TensorComparison(name + " [L2 norm, max |g|]",
                TensorComparison.RelativeL2([ours[0], ours[2]], [reference[0], reference[2]]), Exact: false),
            new TensorComparison(name + " [sum]", sumError, Exact: false, Note),
        ];
    }
}
