using System.Numerics.Tensors;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>KID: the unbiased estimate of the squared MMD with the cubic polynomial kernel, mean and
/// (population) standard deviation over random subsets.</summary>
public sealed record KernelDistance(double Mean, double Std, int Subsets, int SubsetSize);

/// <summary>
/// Distances between two sets of features (real and generated), in float64:
/// <list type="bullet">
/// <item>Fréchet distance of the Gaussians fitted to each set:
/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½ (the last trace equals tr (Σ₁Σ₂)^½, whose
/// nonzero eigenvalues it shares; computed from two symmetric eigendecompositions, so right for singular Σ).</item>
/// <item>KID (Bińkowski et al., 2018): unbiased MMD² with k(x, y) = (x·y / d + 1)³ over random subsets.</item>
/// <item>Precision and recall of the k-nearest-neighbour kind (Kynkäänniemi et al., 2019): the share of
/// generated points inside the real manifold (the union of balls reaching each real point's k-th nearest
/// real neighbour), and of real points inside the generated manifold.</item>
/// </list>
/// The dot products between and within the sets are computed once and shared by KID and precision/recall.
/// </summary>
public sealed class FeatureComparison(FeatureMatrix real, FeatureMatrix generated)
{
    private double[]? _realGram, _generatedGram, _crossGram;

    public FeatureMatrix Real { get; } = real;
    public FeatureMatrix Generated { get; } = generated;

    public double FrechetDistance() =>
        Evaluation.FrechetDistance.Compute(Real.Mean(), Real.Covariance(), Generated.Mean(), Generated.Covariance());

    private double[] RealGram => _realGram ??= FeatureMatrix.Gram(Real, Real);
    private double[] GeneratedGram => _generatedGram ??= FeatureMatrix.Gram(Generated, Generated);
    private double[] CrossGram => _crossGram ??= FeatureMatrix.Gram(Real, Generated); // real rows, generated columns

    /// <param name="subsets">Random subsets drawn (without replacement within one subset).</param>
    /// <param name="subsetSize">Points of each set in a subset; at most the smaller set's size.</param>
    public KernelDistance KernelInceptionDistance(int subsets = 100, int subsetSize = 1000, int seed = 0)
    {
        int m = Math.Min(subsetSize, Math.Min(Real.Count, Generated.Count));
        if (m < 2)
            throw new InvalidOperationException($"KID needs at least 2 feature vectors per set, got {Real.Count} and {Generated.Count}");
        double inverseDimension = 1.0 / Real.Dimension;
        double Kernel(double dot) => Math.Pow(dot * inverseDimension + 1, 3);
        var kxx = RealGram.Select(Kernel).ToArray();
        var kyy = GeneratedGram.Select(Kernel).ToArray();
        var kxy = CrossGram.Select(Kernel).ToArray();
        int nx = Real.Count, ny = Generated.Count;
        var random = new Random(seed);
        var values = new double[subsets];
        for (int s = 0; s < subsets; s++)
        {
            var x = Pick(random, nx, m);
            var y = Pick(random, ny, m);
            double sxx = 0, syy = 0, sxy = 0;
            for (int a = 0; a < m; a++)
            {
                for (int b = 0; b < m; b++)
                {
                    if (a != b)
                    {
                        sxx += kxx[(long)x[a] * nx + x[b]];
                        syy += kyy[(long)y[a] * ny + y[b]];
                    }
                    sxy += kxy[(long)x[a] * ny + y[b]];
                }
            }
            values[s] = (sxx + syy) / ((double)m * (m - 1)) - 2 * sxy / ((double)m * m);
        }
        double mean = values.Average();
        return new KernelDistance(mean, Math.Sqrt(values.Average(v => (v - mean) * (v - mean))), subsets, m);
    }

    /// <summary>(precision, recall) with each point's manifold radius the distance to its <paramref name="k"/>-th
    /// nearest neighbour in its own set (itself excluded).</summary>
    public (double Precision, double Recall) PrecisionRecall(int k = 3)
    {
        int nx = Real.Count, ny = Generated.Count;
        if (k >= Math.Min(nx, ny))
            throw new InvalidOperationException($"precision/recall with k = {k} needs more than {k} points in each set");
        var realNorms = Diagonal(RealGram, nx);
        var generatedNorms = Diagonal(GeneratedGram, ny);
        var realRadii = Radii(RealGram, realNorms, k);
        var generatedRadii = Radii(GeneratedGram, generatedNorms, k);
        double Distance(int r, int g) => realNorms[r] + generatedNorms[g] - 2 * CrossGram[(long)r * ny + g];
        int precise = Enumerable.Range(0, ny).Count(g => Enumerable.Range(0, nx).Any(r => Distance(r, g) <= realRadii[r]));
        int recalled = Enumerable.Range(0, nx).Count(r => Enumerable.Range(0, ny).Any(g => Distance(r, g) <= generatedRadii[g]));
        return ((double)precise / ny, (double)recalled / nx);
    }

    private static double[] Diagonal(double[] gram, int n) => Enumerable.Range(0, n).Select(i => gram[(long)i * n + i]).ToArray();

    /// <summary>Squared distance from each point to its k-th nearest other point of the same set.</summary>
    private static double[] Radii(double[] gram, double[] norms, int k)
    {
        int n = norms.Length;
        var radii = new double[n];
        Parallel.For(0, n, i =>
        {
            var distances = new double[n - 1];
            for (int j = 0, o = 0; j < n; j++)
                if (j != i) distances[o++] = norms[i] + norms[j] - 2 * gram[(long)i * n + j];
            Array.Sort(distances);
            radii[i] = distances[k - 1];
        });
        return radii;
    }

    /// <summary><paramref name="count"/> distinct indices below <paramref name="n"/> (a partial Fisher–Yates shuffle).</summary>
    private static int[] Pick(Random random, int n, int count)
    {
        var all = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < count; i++)
        {
            int j = random.Next(i, n);
            (all[i], all[j]) = (all[j], all[i]);
        }
        return all[..count];
    }
}

/// <summary>The Fréchet distance between two Gaussians (means and covariances), in float64.</summary>
public static class FrechetDistance
{
    /// <param name="covariance1">d × d row-major, symmetric positive semi-definite (singular allowed).</param>
    public static double Compute(double[] mean1, double[] covariance1, double[] mean2, double[] covariance2)
    {
        int d = mean1.Length;
        if (mean2.Length != d || covariance1.Length != d * d || covariance2.Length != d * d)
            throw new ArgumentException($"means of dimension {d} and {mean2.Length} with covariances of {covariance1.Length} and "
                + $"{covariance2.Length} values do not match");
        var root1 = SymmetricEigen.Sqrt(covariance1, d);
        var product = Multiply(Multiply(root1, covariance2, d), root1, d);
        double traceOfRoot = new SymmetricEigen(product, d).RankRevealingValues().Sum(Math.Sqrt);
        double meanTerm = 0, trace1 = 0, trace2 = 0;
        for (int i = 0; i < d; i++)
        {
            meanTerm += (mean1[i] - mean2[i]) * (mean1[i] - mean2[i]);
            trace1 += covariance1[i * d + i];
            trace2 += covariance2[i * d + i];
        }
        return meanTerm + trace1 + trace2 - 2 * traceOfRoot;
    }

    /// <summary>a·b of two n × n row-major matrices.</summary>
    internal static double[] Multiply(double[] a, double[] b, int n)
    {
        var bColumns = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) bColumns[j * n + i] = b[i * n + j];
        var c = new double[n * n];
        Parallel.For(0, n, i =>
        {
            var row = a.AsSpan(i * n, n);
            for (int j = 0; j < n; j++) c[i * n + j] = TensorPrimitives.Dot(row, bColumns.AsSpan(j * n, n));
        });
        return c;
    }
}
