using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests;

public class SamplerTests
{
    private static readonly LinearNoiseSchedule Schedule = new(1000, 0.0015, 0.0195);

    private static float MaxAbsDifference(Tensor a, Tensor b) => a.ToArray().Zip(b.ToArray()).Max(p => Math.Abs(p.First - p.Second));

    [Fact]
    public void Schedule_runs_from_beta_start_to_beta_end()
    {
        Assert.Equal(0.0015, Schedule.Betas[0], 15);
        Assert.Equal(0.0195, Schedule.Betas[^1], 15);
        Assert.Equal(Schedule.Alphas.Aggregate(1.0, (p, a) => p * a), Schedule.AlphaCumProd[^1], 15);
    }

    [Fact]
    public void Ddim_timesteps_are_evenly_spaced_and_end_at_zero()
    {
        Assert.Equal([900, 800, 700, 600, 500, 400, 300, 200, 100, 0], new DdimSampler(Schedule, 10).Timesteps);
        Assert.Equal(Enumerable.Range(0, 1000).Reverse(), new DdimSampler(Schedule, 1000).Timesteps);
        Assert.Equal(Enumerable.Range(0, 1000).Reverse(), new DdpmSampler(Schedule).Timesteps);
    }

    [Fact]
    public void Ddim_with_every_timestep_and_eta_one_is_the_ddpm_step()
    {
        var ddim = new DdimSampler(Schedule, Schedule.NumTimesteps, eta: 1);
        var ddpm = new DdpmSampler(Schedule);
        for (int t = 0; t < Schedule.NumTimesteps; t++)
            Assert.Equal(ddpm.Sigma(t), ddim.Sigma(t), 1e-12);

        using var scope = new TensorScope();
        var generator = new Generator(11);
        foreach (int t in new[] { 999, 500, 1, 0 })
        {
            var xt = Tensor.Randn([2, 3, 4, 4], generator);
            var eps = Tensor.Randn([2, 3, 4, 4], generator);
            var z = Tensor.Randn([2, 3, 4, 4], generator);
            var (ddimPrev, ddimX0) = ddim.Step(xt, eps, t, z);
            var (ddpmPrev, ddpmX0) = ddpm.Step(xt, eps, t, z);
            Assert.True(MaxAbsDifference(ddimPrev, ddpmPrev) < 1e-4, $"t = {t}: x_prev differs by {MaxAbsDifference(ddimPrev, ddpmPrev)}");
            Assert.True(MaxAbsDifference(ddimX0, ddpmX0) < 1e-5, $"t = {t}: x0 differs by {MaxAbsDifference(ddimX0, ddpmX0)}");
        }
    }

    [Fact]
    public void Ddim_with_eta_zero_is_deterministic()
    {
        var ddim = new DdimSampler(Schedule, 50, eta: 0);
        Assert.All(ddim.Timesteps, t => Assert.Equal(0, ddim.Sigma(t)));
        using var scope = new TensorScope();
        var xT = Tensor.Randn([1, 2, 4, 4], new Generator(12));
        Tensor Predict(Tensor x, int t) => x * 0.5f;
        var first = ddim.Sample(xT, Predict, new Generator(1)).ToArray();
        var second = ddim.Sample(xT, Predict, new Generator(2)).ToArray();
        Assert.Equal(first, second);
        Assert.All(first, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Ddpm_sampling_is_reproducible_from_its_generator_and_adds_noise()
    {
        var ddpm = new DdpmSampler(new LinearNoiseSchedule(20, 0.0015, 0.0195));
        using var scope = new TensorScope();
        var xT = Tensor.Randn([1, 2, 4, 4], new Generator(13));
        Tensor Predict(Tensor x, int t) => x * 0.5f;
        var first = ddpm.Sample(xT, Predict, new Generator(1)).ToArray();
        Assert.Equal(first, ddpm.Sample(xT, Predict, new Generator(1)).ToArray());
        Assert.NotEqual(first, ddpm.Sample(xT, Predict, new Generator(2)).ToArray());
    }
}
