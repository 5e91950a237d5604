using IlgpuDiffusion.Diffusion.Training;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

public class EmaWarmupTests
{
    [Fact]
    public void Ema_decay_warms_up_as_diffusers_does_and_stops_at_the_configured_value()
    {
        Assert.Equal(0.1, LdmTrainer.EmaDecayAt(0.999, 0), 12);
        Assert.Equal(0.5, LdmTrainer.EmaDecayAt(0.999, 8), 12);
        Assert.Equal(0.999, LdmTrainer.EmaDecayAt(0.999, 1_000_000), 12);
        var decays = Enumerable.Range(0, 3000).Select(n => LdmTrainer.EmaDecayAt(0.995, n)).ToArray();
        Assert.True(decays.Zip(decays.Skip(1)).All(pair => pair.First <= pair.Second), "the decay never falls");
        Assert.Equal(0.995, decays[^1], 12);
    }
}
