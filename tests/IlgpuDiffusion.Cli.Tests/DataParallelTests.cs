using System.Diagnostics;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>
/// Data-parallel training over MPI (MPICH's mpiexec, which CI installs): N ranks with a global batch compute what one
/// process computes with that batch, a checkpoint of N ranks resumes with another N, and a rank that dies ends the others.
/// </summary>
public class DataParallelTests
{
    private static readonly Lazy<bool> MpiexecPresent = new(() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "mpiexec"))));

    private static void Ok(Ildm.Result result) => Assert.True(result.ExitCode == 0, result.ToString());

    [SkippableFact]
    public void Two_ranks_train_the_autoencoder_as_one_process_with_the_same_global_batch()
    {
        RequireMpi();
        using var project = new TinyProject();
        string[] settings = ["--set", "train_params:disc_start=100", "--model", "vae"];
        Ok(project.Run(["train-autoencoder", .. settings]));
        var single = ReadCheckpoints(project, "vae_autoencoder_ckpt", "vae_autoencoder_state");

        var job = RunRanks(project, 2, ["train-autoencoder", "--overwrite", "--dist-check-steps", "1", .. settings]);
        Ok(job);
        Assert.Single(job.Output.Split('\n'), l => l.StartsWith("train-autoencoder: done", StringComparison.Ordinal)); // rank 0 alone logs
        AssertClose(single, ReadCheckpoints(project, "vae_autoencoder_ckpt", "vae_autoencoder_state"));
    }

    /// <summary>Shares of 3 and 4 items (batches of 7) check the weighting of the ranks' losses; the class condition's
    /// dropout and the noise are drawn for the whole batch.</summary>
    [SkippableFact]
    public void Two_ranks_train_the_ldm_as_one_process_and_their_checkpoint_resumes_with_one_rank()
    {
        RequireMpi();
        using var project = new TinyProject(images: 48, numClasses: 3);
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000", "--set", "train_params:perceptual_weight=0"));
        string[] oneEpoch = ["--set", "train_params:ldm_batch_size=7", "--set", "train_params:ldm_epochs=1"];
        string[] twoEpochs = ["--set", "train_params:ldm_batch_size=7", "--set", "train_params:ldm_epochs=2"];
        Ok(project.Run(["train-ldm", .. oneEpoch]));
        var singleFirst = ReadCheckpoints(project, "ddpm_ckpt", "ddpm_state");
        Ok(project.Run(["train-ldm", "--resume", .. twoEpochs]));
        var singleBoth = ReadCheckpoints(project, "ddpm_ckpt", "ddpm_state");

        Ok(RunRanks(project, 2, ["train-ldm", "--overwrite", "--dist-check-steps", "1", .. oneEpoch]));
        AssertClose(singleFirst, ReadCheckpoints(project, "ddpm_ckpt", "ddpm_state"));
        Ok(project.Run(["train-ldm", "--resume", .. twoEpochs]));
        AssertClose(singleBoth, ReadCheckpoints(project, "ddpm_ckpt", "ddpm_state"));
    }

    [SkippableFact]
    public void Stages_other_than_the_trainers_refuse_to_run_as_several_ranks()
    {
        RequireMpi();
        using var project = new TinyProject();
        var job = RunRanks(project, 2, ["sample"]);
        Assert.NotEqual(0, job.ExitCode);
        Assert.Contains("`ildm sample` runs as one process", job.Error);
    }

    /// <summary>SIGKILL: the survivor's transport (UCX in Debian's MPICH) or its collective timeout ends it.</summary>
    [SkippableFact]
    public void A_killed_rank_ends_the_others_with_an_error_within_a_bounded_time()
    {
        var (job, sinceFailure) = FailRankOne(rank1 => rank1.Kill());
        Assert.True(sinceFailure < TimeSpan.FromSeconds(TimeoutSeconds + 30), $"ended {sinceFailure.TotalSeconds:F0} s after\n{job}");
    }

    /// <summary>SIGSTOP: nothing but the collective timeout can notice a rank that hangs.</summary>
    [SkippableFact]
    public void A_hung_rank_ends_the_others_with_the_timeout_error()
    {
        var (job, sinceFailure) = FailRankOne(rank1 => Process.Start("kill", ["-STOP", $"{rank1.Id}"])!.WaitForExit());
        Assert.True(sinceFailure < TimeSpan.FromSeconds(TimeoutSeconds + 30), $"ended {sinceFailure.TotalSeconds:F0} s after\n{job}");
        Assert.Matches($"error: rank 0: [a-z -]+ did not complete within {TimeoutSeconds} s", job.Error);
    }

    private const int TimeoutSeconds = 20;

    /// <summary>Starts a long 2-rank LDM run (mpiexec's own clean-up off, so that only ildm can end the survivor), waits until
    /// it trains, does <paramref name="fail"/> to rank 1 and returns the job's result and how long rank 0 took to end.</summary>
    private static (Ildm.Result Job, TimeSpan SinceFailure) FailRankOne(Action<Process> fail)
    {
        RequireMpi();
        using var project = new TinyProject();
        Ok(project.Run("train-autoencoder", "--set", "train_params:disc_start=1000", "--set", "train_params:perceptual_weight=0"));
        string marker = Guid.NewGuid().ToString("N");
        using var job = StartRanks(project, 2, marker, ["-disable-auto-cleanup"],
            ["train-ldm", "--set", "train_params:ldm_epochs=1000", "--dist-timeout", $"{TimeoutSeconds}"]);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        job.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        job.ErrorDataReceived += (_, e) => output.Enqueue("stderr: " + (e.Data ?? ""));
        job.BeginOutputReadLine();
        job.BeginErrorReadLine();
        string Collected() => string.Join('\n', output);
        var started = Stopwatch.StartNew();
        while (!output.Any(l => l.StartsWith("ldm 50/", StringComparison.Ordinal)))
        {
            Assert.False(job.HasExited, $"the job ended before training:\n{Collected()}");
            Assert.True(started.Elapsed < TimeSpan.FromMinutes(3), $"the job did not train within 3 minutes:\n{Collected()}");
            Thread.Sleep(100);
        }
        using var rank1 = Process.GetProcessById(RankProcess(marker, 1));
        fail(rank1);
        var sinceFailure = Stopwatch.StartNew();
        bool ended = job.WaitForExit(TimeSpan.FromSeconds(TimeoutSeconds + 60));
        var elapsed = sinceFailure.Elapsed;
        if (!ended) job.Kill(entireProcessTree: true);
        if (!rank1.HasExited) rank1.Kill();
        Assert.True(ended, $"rank 0 was still running a minute after its timeout:\n{Collected()}");
        job.WaitForExit(); // the output is complete
        var lines = output.ToList();
        var result = new Ildm.Result(job.ExitCode, string.Join('\n', lines.Where(l => !l.StartsWith("stderr: ", StringComparison.Ordinal))),
            string.Join('\n', lines.Where(l => l.StartsWith("stderr: ", StringComparison.Ordinal)).Select(l => l[8..])));
        Assert.True(result.ExitCode != 0, result.ToString());
        return (result, elapsed);
    }

    private static void RequireMpi() => Skip.IfNot(MpiexecPresent.Value, "mpiexec not found: install MPICH (apt-get install mpich)");

    private static Ildm.Result RunRanks(TinyProject project, int ranks, string[] args)
    {
        using var job = StartRanks(project, ranks, Guid.NewGuid().ToString("N"), [], args);
        var stdout = job.StandardOutput.ReadToEndAsync();
        var stderr = job.StandardError.ReadToEndAsync();
        if (!job.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            job.Kill(entireProcessTree: true);
            throw new TimeoutException($"mpiexec -n {ranks} ildm {string.Join(' ', args)} did not finish in 10 minutes");
        }
        return new Ildm.Result(job.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>mpiexec -n <paramref name="ranks"/> ildm.dll …, one core's thread per rank, ranks marked by an environment
    /// variable so that a test can find their processes.</summary>
    private static Process StartRanks(TinyProject project, int ranks, string marker, string[] mpiexecOptions, string[] args)
    {
        var info = new ProcessStartInfo("mpiexec")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // mpiexec forwards its input to rank 0: give it none
            WorkingDirectory = project.Folder,
        };
        info.Environment["DOTNET_PROCESSOR_COUNT"] = "1";
        info.Environment["ILDM_TEST_JOB"] = marker;
        string dll = Path.Combine(AppContext.BaseDirectory, "ildm.dll");
        foreach (var a in (string[])[.. mpiexecOptions, "-n", $"{ranks}", "dotnet", dll, .. args,
                     "--config", project.ConfigPath, "--device", "cpu", "--output", project.Folder])
            info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        process.StandardInput.Close();
        return process;
    }

    /// <summary>The process id of rank <paramref name="rank"/> of the job marked <paramref name="marker"/>.</summary>
    private static int RankProcess(string marker, int rank)
    {
        var marked = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out int pid)) continue;
            string environment;
            try
            {
                environment = File.ReadAllText(Path.Combine(folder, "environ"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone, or not ours
            }
            var variables = environment.Split('\0');
            if (variables.Contains($"ILDM_TEST_JOB={marker}"))
                marked.Add($"{pid}: {string.Join(' ', variables.Where(v => v.StartsWith("PMI_", StringComparison.Ordinal)))}");
            if (variables.Contains($"ILDM_TEST_JOB={marker}") && variables.Contains($"PMI_RANK={rank}")) return pid;
        }
        throw new InvalidOperationException($"no process of rank {rank} found; marked: {string.Join(", ", marked)}");
    }

    private static Dictionary<string, HostTensor> ReadCheckpoints(TinyProject project, params string[] stems) =>
        stems.SelectMany(s => SafeTensors.Read(Path.Combine(project.Task, s + ".safetensors"))
            .Select(p => KeyValuePair.Create($"{s}/{p.Key}", p.Value))).ToDictionary();

    /// <summary>Parameters and Adam moments agree to float32 round-off (the ranks sum the gradient in another order than one
    /// process does).</summary>
    private static void AssertClose(Dictionary<string, HostTensor> expected, Dictionary<string, HostTensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
        {
            if (tensor.Ints is { } ints)
            {
                Assert.True(ints.SequenceEqual(actual[name].Ints!), $"{name} differs");
                continue;
            }
            var a = tensor.Floats!;
            var b = actual[name].Floats!;
            double scale = a.Max(v => Math.Abs((double)v)), worst = a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));
            Assert.True(worst <= 1e-4 * scale + 1e-7, $"{name}: max |difference| {worst:G3} for values up to {scale:G3}");
        }
    }
}
