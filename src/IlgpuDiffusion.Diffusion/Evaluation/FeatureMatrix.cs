using System.Numerics.Tensors;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>One feature vector per image, row-major Count × Dimension, in float64 (the statistics need it).</summary>
public sealed class FeatureMatrix
{
    public FeatureMatrix(double[] values, int count, int dimension)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimension);
        if (values.Length != (long)count * dimension)
            throw new ArgumentException($"{values.Length} values are not {count} features of dimension {dimension}", nameof(values));
        Values = values;
        Count = count;
        Dimension = dimension;
    }

    public double[] Values { get; }
    public int Count { get; }
    public int Dimension { get; }

    public ReadOnlySpan<double> Row(int i) => Values.AsSpan(i * Dimension, Dimension);

    /// <summary>The first <paramref name="count"/> rows.</summary>
    public FeatureMatrix Take(int count) => count >= Count ? this : new FeatureMatrix(Values[..(count * Dimension)], count, Dimension);

    public double[] Mean()
    {
        var mean = new double[Dimension];
        for (int i = 0; i < Count; i++) TensorPrimitives.Add(mean, Row(i), mean);
        TensorPrimitives.Divide(mean, Count, mean);
        return mean;
    }

    /// <summary>The sample covariance (divided by Count − 1, as numpy.cov), Dimension × Dimension row-major.</summary>
    public double[] Covariance()
    {
        if (Count < 2) throw new InvalidOperationException($"a covariance needs at least 2 feature vectors, got {Count}");
        var mean = Mean();
        int d = Dimension;
        // centred columns, each contiguous, so every entry is one dot product
        var columns = new double[d * Count];
        for (int i = 0; i < Count; i++)
            for (int j = 0; j < d; j++) columns[j * Count + i] = Values[i * d + j] - mean[j];
        var covariance = new double[d * d];
        Parallel.For(0, d, j =>
        {
            var cj = columns.AsSpan(j * Count, Count);
            for (int k = 0; k <= j; k++)
                covariance[j * d + k] = covariance[k * d + j] = TensorPrimitives.Dot(cj, columns.AsSpan(k * Count, Count)) / (Count - 1);
        });
        return covariance;
    }

    /// <summary>All dot products a_i · b_j, a.Count × b.Count row-major.</summary>
    public static double[] Gram(FeatureMatrix a, FeatureMatrix b)
    {
        if (a.Dimension != b.Dimension)
            throw new ArgumentException($"features of dimension {a.Dimension} and {b.Dimension} cannot be compared");
        var gram = new double[(long)a.Count * b.Count];
        Parallel.For(0, a.Count, i =>
        {
            var row = a.Row(i);
            for (int j = 0; j < b.Count; j++) gram[(long)i * b.Count + j] = TensorPrimitives.Dot(row, b.Row(j));
        });
        return gram;
    }
}
