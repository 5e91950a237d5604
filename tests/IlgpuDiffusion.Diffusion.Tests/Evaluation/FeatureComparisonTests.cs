using System.Text.Json;
using IlgpuDiffusion.Diffusion.Evaluation;

namespace IlgpuDiffusion.Diffusion.Tests.Evaluation;

/// <summary>The sample-quality statistics against NumPy/SciPy (scripts/make-evaluation-fixture.py) and their
/// defining properties.</summary>
public class FeatureComparisonTests
{
    private static readonly JsonElement Fixture =
        JsonDocument.Parse(File.ReadAllText(Fixtures.Path("evaluation/features.json"))).RootElement;

    private static int Dimension => Fixture.GetProperty("dimension").GetInt32();

    private static double[] Array(string name) => Fixture.GetProperty(name).EnumerateArray().Select(v => v.GetDouble()).ToArray();

    private static FeatureMatrix Features(string name)
    {
        var values = Array(name);
        return new FeatureMatrix(values, values.Length / Dimension, Dimension);
    }

    private static double RelativeError(double[] actual, double[] expected) =>
        Math.Sqrt(actual.Zip(expected, (a, e) => (a - e) * (a - e)).Sum() / expected.Sum(e => e * e));

    /// <summary>Gaussian features with a correlated covariance, like a network's (ranks below the dimension allowed).</summary>
    private static FeatureMatrix Gaussian(int count, int dimension, int seed, double noise = 0, FeatureMatrix? around = null)
    {
        var random = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var values = new double[count * dimension];
        for (int i = 0; i < count; i++)
        {
            double shared = Normal();
            for (int j = 0; j < dimension; j++)
                values[i * dimension + j] = (around?.Values[i * dimension + j] ?? Normal() + shared * (j % 3)) + noise * Normal();
        }
        return new FeatureMatrix(values, count, dimension);
    }

    [Fact]
    public void Covariance_and_its_square_root_match_numpy_and_scipy()
    {
        var real = Features("real");
        Assert.True(RelativeError(real.Covariance(), Array("real_covariance")) < 1e-12);
        Assert.True(RelativeError(SymmetricEigen.Sqrt(real.Covariance(), Dimension), Array("real_covariance_sqrtm")) < 1e-9);
    }

    [Fact]
    public void Square_root_of_a_singular_covariance_matches_numpy_and_squares_back()
    {
        var covariance = Features("few").Covariance(); // 10 points in 16 dimensions: rank 9
        var root = SymmetricEigen.Sqrt(covariance, Dimension);
        Assert.True(RelativeError(root, Array("few_covariance_sqrt_eigh")) < 1e-9);
        Assert.True(RelativeError(FrechetDistance.Multiply(root, root, Dimension), covariance) < 1e-12);
    }

    [Fact]
    public void Frechet_distance_matches_scipy_for_full_rank_and_singular_covariances()
    {
        var generated = Features("generated");
        Assert.Equal(Fixture.GetProperty("fd_real_generated").GetDouble(),
            new FeatureComparison(Features("real"), generated).FrechetDistance(), 1e-9);
        Assert.Equal(Fixture.GetProperty("fd_few_generated").GetDouble(),
            new FeatureComparison(Features("few"), generated).FrechetDistance(), 1e-8);
    }

    [Fact]
    public void Kid_of_one_subset_holding_every_point_and_precision_recall_match_numpy()
    {
        var comparison = new FeatureComparison(Features("real").Take(30), Features("generated"));
        var kid = comparison.KernelInceptionDistance(subsets: 3, subsetSize: 30);
        Assert.Equal(Fixture.GetProperty("kid_real30_generated").GetDouble(), kid.Mean, 1e-10);
        Assert.Equal(0, kid.Std, 1e-10); // every subset holds all points: the same value each time

        var expected = Array("precision_recall_k3");
        var (precision, recall) = new FeatureComparison(Features("real"), Features("generated")).PrecisionRecall(k: 3);
        Assert.Equal(expected[0], precision, 1e-12);
        Assert.Equal(expected[1], recall, 1e-12);
    }

    [Fact]
    public void Frechet_distance_of_a_set_with_itself_is_zero_even_when_singular()
    {
        foreach (int count in new[] { 500, 40 }) // 40 points in 64 dimensions: a singular covariance
        {
            var set = Gaussian(count, 64, seed: count);
            double scale = Enumerable.Range(0, 64).Sum(i => set.Covariance()[i * 64 + i]); // tr Σ
            Assert.Equal(0, new FeatureComparison(set, set).FrechetDistance() / scale, 1e-9);
        }
    }

    [Fact]
    public void Frechet_distance_grows_monotonically_with_added_gaussian_noise()
    {
        var real = Gaussian(400, 32, seed: 1);
        var distances = new[] { 0.05, 0.1, 0.2, 0.4, 0.8 }
            .Select(noise => new FeatureComparison(real, Gaussian(400, 32, seed: 2, noise, around: real)).FrechetDistance())
            .ToArray();
        for (int i = 1; i < distances.Length; i++)
            Assert.True(distances[i] > distances[i - 1], $"FD {string.Join(", ", distances)} does not grow with the noise");
    }

    [Fact]
    public void Kid_of_two_halves_of_one_set_is_zero_within_its_std_and_positive_for_a_shifted_set()
    {
        var set = Gaussian(600, 32, seed: 3);
        var kid = new FeatureComparison(set.Take(300), new FeatureMatrix(set.Values[(300 * 32)..], 300, 32))
            .KernelInceptionDistance(subsets: 20, subsetSize: 100);
        Assert.True(Math.Abs(kid.Mean) <= 2 * kid.Std, $"KID {kid.Mean} ± {kid.Std}");
        Assert.True(kid.Std > 0);

        var shifted = new FeatureMatrix(set.Values[(300 * 32)..].Select(v => v + 1.5).ToArray(), 300, 32);
        var far = new FeatureComparison(set.Take(300), shifted).KernelInceptionDistance(subsets: 20, subsetSize: 100);
        Assert.True(far.Mean > 3 * far.Std, $"KID of a shifted set {far.Mean} ± {far.Std}");
    }

    [Fact]
    public void Ssim_matches_numpy_and_is_one_for_identical_images()
    {
        // the fixture's images are in [0, 1]; Ssim reads [−1, 1]
        var a = Array("ssim_image_a").Select(v => (float)(2 * v - 1)).ToArray();
        var b = Array("ssim_image_b").Select(v => (float)(2 * v - 1)).ToArray();
        Assert.Equal(Fixture.GetProperty("ssim").GetDouble(), Ssim.Compute(a, b, 1, 20), 1e-6);
        Assert.Equal(1, Ssim.Compute(a, a, 1, 20), 12);
    }

    [Fact]
    public void Statistics_that_are_not_finite_are_written_as_null_and_read_back_as_NaN()
    {
        var report = new SampleQualityReport("resnet18", "real", 4, "fake", 4, double.PositiveInfinity, double.NaN,
            double.NegativeInfinity, 1, 2, 0.5, 0.25, 3);

        string json = JsonSerializer.Serialize(report, SampleQualityReport.Json);

        var written = JsonDocument.Parse(json).RootElement; // strict JSON: no Infinity or NaN tokens
        foreach (var key in new[] { "fd", "kid_mean", "kid_std" }) Assert.Equal(JsonValueKind.Null, written.GetProperty(key).ValueKind);
        Assert.Equal(0.5, written.GetProperty("precision").GetDouble());
        var read = JsonSerializer.Deserialize<SampleQualityReport>(json, SampleQualityReport.Json)!;
        Assert.True(double.IsNaN(read.Fd) && double.IsNaN(read.KidStd), json);
    }
}
