namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>
/// Eigendecomposition of a real symmetric matrix in float64: Householder reduction to tridiagonal form, then
/// the implicit QL method (EISPACK's tred2 and tql2, as in JAMA). Backward stable for any symmetric input —
/// singular and ill-conditioned matrices included — unlike a general (Schur-based) matrix square root.
/// </summary>
public sealed class SymmetricEigen
{
    /// <summary>The spacing of doubles at 1 (numpy's finfo(float).eps; not .NET's double.Epsilon, the smallest subnormal).</summary>
    private const double MachineEpsilon = 2.220446049250313e-16;

    /// <param name="matrix">n × n row-major; only symmetry is assumed (the mean of a and aᵀ is used).</param>
    public SymmetricEigen(double[] matrix, int n)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.Length != (long)n * n) throw new ArgumentException($"{matrix.Length} values are not a {n}×{n} matrix", nameof(matrix));
        var v = new double[n][];
        for (int i = 0; i < n; i++)
        {
            v[i] = new double[n];
            for (int j = 0; j < n; j++) v[i][j] = 0.5 * (matrix[i * n + j] + matrix[j * n + i]);
        }
        var d = new double[n];
        var e = new double[n];
        if (n > 0)
        {
            Tridiagonalise(v, d, e);
            var vectors = Transposed(v);
            Diagonalise(vectors, d, e);
            Vectors = vectors;
        }
        else
        {
            Vectors = [];
        }
        Values = d;
    }

    /// <summary>Eigenvalues (unsorted).</summary>
    public double[] Values { get; }

    /// <summary>Vectors[i] is the unit eigenvector of Values[i].</summary>
    public double[][] Vectors { get; }

    /// <summary>V·diag(f(λ))·Vᵀ, n × n row-major, given the f(λ) in the order of <see cref="Values"/>.</summary>
    public double[] Recompose(double[] functionOfValues)
    {
        int n = Values.Length;
        var result = new double[n * n];
        var scaled = new double[n];
        for (int k = 0; k < n; k++)
        {
            double f = functionOfValues[k];
            if (f == 0) continue;
            var u = Vectors[k];
            for (int i = 0; i < n; i++) scaled[i] = f * u[i];
            Parallel.For(0, n, i =>
            {
                double s = scaled[i];
                var row = result.AsSpan(i * n, n);
                for (int j = 0; j < n; j++) row[j] += s * u[j];
            });
        }
        return result;
    }

    /// <summary>The symmetric positive semi-definite square root of a symmetric PSD matrix.</summary>
    public static double[] Sqrt(double[] matrix, int n)
    {
        var eigen = new SymmetricEigen(matrix, n);
        return eigen.Recompose(eigen.RankRevealingValues().Select(Math.Sqrt).ToArray());
    }

    /// <summary>Eigenvalues of a PSD matrix with those below numpy.linalg.matrix_rank's tolerance (largest · n · ε) set
    /// to 0: zero in exact arithmetic, they come out as ±ε-sized round-off, whose square roots (√ε ≈ 1.5e-8 of the
    /// scale each) would otherwise add up in a singular covariance's square root.</summary>
    public double[] RankRevealingValues()
    {
        double tolerance = Values.DefaultIfEmpty(0).Max() * Values.Length * MachineEpsilon;
        return Values.Select(l => l > tolerance ? l : 0).ToArray();
    }

    private static double[][] Transposed(double[][] v)
    {
        int n = v.Length;
        var t = new double[n][];
        for (int i = 0; i < n; i++)
        {
            t[i] = new double[n];
            for (int k = 0; k < n; k++) t[i][k] = v[k][i];
        }
        return t;
    }

    /// <summary>tred2: v becomes the orthogonal transformation (columns), d the diagonal, e the sub-diagonal in e[1..].</summary>
    private static void Tridiagonalise(double[][] v, double[] d, double[] e)
    {
        int n = d.Length;
        for (int j = 0; j < n; j++) d[j] = v[n - 1][j];
        for (int i = n - 1; i > 0; i--)
        {
            double scale = 0, h = 0;
            for (int k = 0; k < i; k++) scale += Math.Abs(d[k]);
            if (scale == 0)
            {
                e[i] = d[i - 1];
                for (int j = 0; j < i; j++)
                {
                    d[j] = v[i - 1][j];
                    v[i][j] = 0;
                    v[j][i] = 0;
                }
            }
            else
            {
                for (int k = 0; k < i; k++)
                {
                    d[k] /= scale;
                    h += d[k] * d[k];
                }
                double f = d[i - 1];
                double g = Math.Sqrt(h);
                if (f > 0) g = -g;
                e[i] = scale * g;
                h -= f * g;
                d[i - 1] = f - g;
                for (int j = 0; j < i; j++) e[j] = 0;
                for (int j = 0; j < i; j++)
                {
                    f = d[j];
                    v[j][i] = f;
                    g = e[j] + v[j][j] * f;
                    for (int k = j + 1; k <= i - 1; k++)
                    {
                        g += v[k][j] * d[k];
                        e[k] += v[k][j] * f;
                    }
                    e[j] = g;
                }
                f = 0;
                for (int j = 0; j < i; j++)
                {
                    e[j] /= h;
                    f += e[j] * d[j];
                }
                double hh = f / (h + h);
                for (int j = 0; j < i; j++) e[j] -= hh * d[j];
                for (int j = 0; j < i; j++)
                {
                    f = d[j];
                    g = e[j];
                    for (int k = j; k <= i - 1; k++) v[k][j] -= f * e[k] + g * d[k];
                    d[j] = v[i - 1][j];
                    v[i][j] = 0;
                }
            }
            d[i] = h;
        }
        // accumulate the transformations
        for (int i = 0; i < n - 1; i++)
        {
            v[n - 1][i] = v[i][i];
            v[i][i] = 1;
            double h = d[i + 1];
            if (h != 0)
            {
                for (int k = 0; k <= i; k++) d[k] = v[k][i + 1] / h;
                for (int j = 0; j <= i; j++)
                {
                    double g = 0;
                    for (int k = 0; k <= i; k++) g += v[k][i + 1] * v[k][j];
                    for (int k = 0; k <= i; k++) v[k][j] -= g * d[k];
                }
            }
            for (int k = 0; k <= i; k++) v[k][i + 1] = 0;
        }
        for (int j = 0; j < n; j++)
        {
            d[j] = v[n - 1][j];
            v[n - 1][j] = 0;
        }
        v[n - 1][n - 1] = 1;
        e[0] = 0;
    }

    /// <summary>tql2 on the tridiagonal (d, e); rows of <paramref name="vectors"/> are rotated along, ending as eigenvectors.</summary>
    private static void Diagonalise(double[][] vectors, double[] d, double[] e)
    {
        int n = d.Length;
        for (int i = 1; i < n; i++) e[i - 1] = e[i];
        e[n - 1] = 0;
        double f = 0, tst1 = 0;
        const double eps = MachineEpsilon;
        for (int l = 0; l < n; l++)
        {
            tst1 = Math.Max(tst1, Math.Abs(d[l]) + Math.Abs(e[l]));
            int m = l;
            while (m < n && Math.Abs(e[m]) > eps * tst1) m++;
            if (m > l)
            {
                int iterations = 0;
                do
                {
                    if (++iterations > 100) throw new ArithmeticException("symmetric eigendecomposition: QL did not converge");
                    double g = d[l];
                    double p = (d[l + 1] - g) / (2 * e[l]);
                    double r = double.Hypot(p, 1);
                    if (p < 0) r = -r;
                    d[l] = e[l] / (p + r);
                    d[l + 1] = e[l] * (p + r);
                    double dl1 = d[l + 1];
                    double h = g - d[l];
                    for (int i = l + 2; i < n; i++) d[i] -= h;
                    f += h;
                    p = d[m];
                    double c = 1, c2 = 1, c3 = 1, el1 = e[l + 1], s = 0, s2 = 0;
                    for (int i = m - 1; i >= l; i--)
                    {
                        c3 = c2;
                        c2 = c;
                        s2 = s;
                        g = c * e[i];
                        h = c * p;
                        r = double.Hypot(p, e[i]);
                        e[i + 1] = s * r;
                        s = e[i] / r;
                        c = p / r;
                        p = c * d[i] - s * g;
                        d[i + 1] = h + s * (c * g + s * d[i]);
                        var vi = vectors[i];
                        var vi1 = vectors[i + 1];
                        for (int k = 0; k < n; k++)
                        {
                            h = vi1[k];
                            vi1[k] = s * vi[k] + c * h;
                            vi[k] = c * vi[k] - s * h;
                        }
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1;
                    e[l] = s * p;
                    d[l] = c * p;
                }
                while (Math.Abs(e[l]) > eps * tst1);
            }
            d[l] += f;
            e[l] = 0;
        }
    }
}
