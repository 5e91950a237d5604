using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Tests.Data;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

public class RunRecordTests
{
    /// <summary>The resolved config a run records is the config: written and loaded again, it writes the same JSON.</summary>
    [Theory]
    [InlineData("mnist")]
    [InlineData("celebhq_text_image_cond")]
    [InlineData("fashion-mnist-class-cond")]
    public void The_resolved_config_loads_back_to_the_same_config(string name)
    {
        using var folder = new TempFolder();
        var config = ExperimentConfig.Load(Fixtures.RepoFile($"configs/{name}.json"), ["train_params:ldm_lr=0.0003"]);
        var json = ConfigWriter.ToJson(config).ToJsonString();
        File.WriteAllText(folder.File("resolved.json"), json);
        var again = ExperimentConfig.Load(folder.File("resolved.json"));
        Assert.Equal(json, ConfigWriter.ToJson(again).ToJsonString());
        Assert.Equal(0.0003, again.Train.LdmLr);
    }

    /// <summary>A run that names no --model uses what its task folder trained: the KL-VAE when only its checkpoint is there.</summary>
    [Fact]
    public void A_task_folder_with_only_a_kl_vae_checkpoint_means_the_vae()
    {
        using var folder = new TempFolder();
        var config = ExperimentConfig.Load(Fixtures.RepoFile("configs/mnist.json"));
        var run = new TrainingRun(config, Device.Cpu, folder.Path, TextWriter.Null);
        run.EnsureTaskFolder();
        Assert.False(IAutoencoder.TrainedOnlyKlVae(run));
        File.WriteAllText(run.File("vae_autoencoder_ckpt.safetensors"), "");
        Assert.True(IAutoencoder.TrainedOnlyKlVae(run));
        File.WriteAllText(run.File("vqvae_autoencoder_ckpt.pth"), "");
        Assert.False(IAutoencoder.TrainedOnlyKlVae(run));
    }

    [Theory]
    [InlineData(12.345, "12.35 it/s")]
    [InlineData(1.0, "1.00 it/s")]
    [InlineData(0.004, "250.0 s/it")] // a slow device shows seconds per step, not 0.00 it/s
    [InlineData(0.0, "- it/s")]
    public void Slow_steps_show_seconds_per_step(double stepsPerSecond, string shown) =>
        Assert.Equal(shown, ProgressBar.Rate(stepsPerSecond));
}
