using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

public class MetricsLogTests
{
    [Fact]
    public void Rows_are_written_as_they_come_and_a_resume_drops_later_rows()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("ildm-metrics-").FullName, "metrics.csv");
        using (var log = new MetricsLog(path, ["loss", "mse"]))
            for (int step = 1; step <= 5; step++)
                log.Append(step, 0, new Dictionary<string, double> { ["loss"] = step * 0.5, ["mse"] = step });
        Assert.Equal(6, File.ReadAllLines(path).Length);
        Assert.Equal("step,epoch,loss,mse", File.ReadAllLines(path)[0]);

        using (var resumed = new MetricsLog(path, ["loss", "mse"], resumeAfterStep: 3))
        {
            Assert.Equal([1L, 2, 3], resumed.Series["loss"].Select(p => p.Step));
            resumed.Append(4, 1, new Dictionary<string, double> { ["loss"] = 9 });
        }
        var lines = File.ReadAllLines(path);
        Assert.Equal(5, lines.Length);
        Assert.Equal("4,1,9,", lines[^1]);
    }

    [Fact]
    public void The_progress_bar_prints_rate_eta_and_losses_when_redirected()
    {
        var output = new StringWriter();
        var bar = new ProgressBar("train", 4, output: output) { RedirectedEvery = 2 };
        for (int i = 1; i <= 4; i++) bar.Report(i, new Dictionary<string, double> { ["loss"] = 1.0 / i });
        bar.Finish();
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("train 4/4", lines[1]);
        Assert.Contains("it/s", lines[1]);
        Assert.Contains("ETA", lines[1]);
        Assert.Contains("loss 0.25", lines[1]);
    }
}

public class TrainingGuardTests
{
    [Fact]
    public void Running_out_of_device_memory_names_the_batch_size_to_try()
    {
        var full = new DeviceOutOfMemoryException("cuda:0", 1 << 30, 3L << 30, 0, new OutOfMemoryException());
        var e = Assert.Throws<InsufficientMemoryException>(() =>
            TrainingRun.GuardMemory<int>(() => throw full, "train_params.ldm_batch_size", 64));
        Assert.Contains("train_params.ldm_batch_size = 64", e.Message);
        Assert.Contains("--set train_params:ldm_batch_size=32", e.Message);
        Assert.Same(full, e.InnerException);
    }

    [Fact]
    public void Other_failures_of_a_step_pass_through()
    {
        var hostFull = new OutOfMemoryException("the host heap is full");
        Assert.Same(hostFull, Assert.Throws<OutOfMemoryException>(() =>
            TrainingRun.GuardMemory<int>(() => throw hostFull, "train_params.ldm_batch_size", 64)));
    }

    [Fact]
    public void A_non_finite_loss_names_the_term_and_the_step()
    {
        var e = Assert.Throws<TrainingDivergedException>(() =>
            TrainingRun.CheckFinite(17, new Dictionary<string, double> { ["recon"] = 0.1, ["perceptual"] = double.NaN }));
        Assert.Contains("'perceptual'", e.Message);
        Assert.Contains("step 17", e.Message);
    }
}
