using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors.Parity;

/// <summary>One compared tensor: relative L2 error (or exact match for integers) against the reference.</summary>
public sealed record TensorComparison(string Name, double Error, bool Exact)
{
    public static TensorComparison Of(string name, Tensor actual, HostTensor expected)
    {
        if (!actual.Shape.SequenceEqual(expected.Shape))
            throw new InvalidDataException($"'{name}': computed shape {Tensor.ShapeString(actual.Shape)}, reference {Tensor.ShapeString(expected.Shape)}");
        if (expected.DType == DType.Int32)
        {
            var a = actual.DType == DType.Int32 ? actual.ToIntArray() : actual.ToArray().Select(f => (int)f).ToArray();
            int mismatches = a.Zip(expected.Ints!).Count(p => p.First != p.Second);
            return new TensorComparison(name, mismatches, Exact: true);
        }
        return new TensorComparison(name, RelativeL2(actual.ToArray(), expected.Floats!), Exact: false);
    }

    public static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-12);
    }
}

/// <summary>Outcome of one case: every comparison, the worst relative error, and pass/fail.</summary>
public sealed record ParityResult(string Case, double Tolerance, IReadOnlyList<TensorComparison> Comparisons, string? Error = null)
{
    public double WorstError => Comparisons.Where(c => !c.Exact).Select(c => c.Error).DefaultIfEmpty(0).Max();
    public bool Passed => Error == null && Comparisons.Count > 0 && Comparisons.All(c => c.Exact ? c.Error == 0 : c.Error <= Tolerance);

    public string Describe()
    {
        if (Error != null) return $"{Case,-28} FAIL  {Error}";
        var worst = Comparisons.Where(c => !c.Exact).OrderByDescending(c => c.Error).FirstOrDefault();
        var exact = Comparisons.Where(c => c.Exact && c.Error > 0).Select(c => $"{c.Name}: {c.Error} mismatches");
        return $"{Case,-28} {(Passed ? "pass" : "FAIL")}  worst rel L2 {WorstError:E2} ({worst?.Name ?? "-"}) tol {Tolerance:E0}" +
               (exact.Any() ? "  " + string.Join(", ", exact) : "");
    }
}

/// <summary>Computes a kind of case (chosen by the case name's prefix) and names the tensors to compare.</summary>
public interface IParityHandler
{
    /// <summary>Case-name prefixes this handler computes, most specific first.</summary>
    IReadOnlyList<string> Prefixes { get; }

    /// <summary>Runs the case on <paramref name="device"/> and returns computed tensors by reference name.</summary>
    IReadOnlyDictionary<string, Tensor> Compute(ParityCase c, Device device);
}

/// <summary>A handler from a function: the usual way to define one.</summary>
public sealed class ParityHandler(IReadOnlyList<string> prefixes, Func<ParityCase, Device, IReadOnlyDictionary<string, Tensor>> compute) : IParityHandler
{
    public ParityHandler(string prefix, Func<ParityCase, Device, IReadOnlyDictionary<string, Tensor>> compute) : this([prefix], compute) { }

    public IReadOnlyList<string> Prefixes => prefixes;
    public IReadOnlyDictionary<string, Tensor> Compute(ParityCase c, Device device) => compute(c, device);
}

/// <summary>Checks every case of a fixture folder against the handlers that know its kind.</summary>
public sealed class ParityRunner(IEnumerable<IParityHandler> handlers)
{
    private readonly List<IParityHandler> _handlers = handlers.ToList();

    public IParityHandler? HandlerFor(string caseName) =>
        _handlers.SelectMany(h => h.Prefixes.Select(p => (Prefix: p, Handler: h)))
            .Where(x => caseName.StartsWith(x.Prefix, StringComparison.Ordinal))
            .OrderByDescending(x => x.Prefix.Length)
            .Select(x => x.Handler).FirstOrDefault();

    public ParityResult Run(ParityCase c, Device device)
    {
        var handler = HandlerFor(c.Name);
        if (handler == null) return new ParityResult(c.Name, c.Tolerance, [], "no handler knows this kind of case");
        using var scope = new TensorScope();
        try
        {
            var computed = handler.Compute(c, device);
            var comparisons = computed.Select(kv => TensorComparison.Of(kv.Key, kv.Value, c.Tensor(kv.Key))).ToList();
            return new ParityResult(c.Name, c.Tolerance, comparisons);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or InvalidOperationException or NotSupportedException or FileNotFoundException)
        {
            return new ParityResult(c.Name, c.Tolerance, [], e.Message);
        }
    }
}
