using System.Text.Json;
using System.Text.Json.Nodes;
using IlgpuDiffusion.Diffusion.Config;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>A tiny project with a trained autoencoder and UNet, shared by the tests that need one (trained once).</summary>
public sealed class TrainedTinyProject : IDisposable
{
    public TinyProject Project { get; } = new(images: 24);

    public TrainedTinyProject()
    {
        foreach (var stage in new[] { "train-autoencoder", "train-ldm" })
        {
            var result = Project.Run(stage, "--set", "train_params:disc_start=1000", "--set", "train_params:ldm_epochs=1");
            if (result.ExitCode != 0) throw new InvalidOperationException(result.ToString());
        }
    }

    public void Dispose() => Project.Dispose();
}

/// <summary>What a new user meets in the first hour: run records, resume checks, errors phrased for users, and the
/// rough edges of issue 12, each through the `ildm` executable.</summary>
public class FirstHourTests(TrainedTinyProject trained) : IClassFixture<TrainedTinyProject>
{
    private TinyProject Project => trained.Project;

    private static void Ok(Ildm.Result result) => Assert.True(result.ExitCode == 0, result.ToString());

    private static void FailsWith(Ildm.Result result, string message)
    {
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(message, result.Error);
    }

    [Fact]
    public void Every_run_records_its_resolved_config_command_line_version_and_log()
    {
        string task = Project.Task;
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(task, "train-ldm_run.json")))!;
        Assert.StartsWith("ildm train-ldm ", (string)record["command_line"]!);
        Assert.Contains("train_params:ldm_epochs=1", (string)record["command_line"]!);
        Assert.False(string.IsNullOrEmpty((string?)record["version"]));
        Assert.Equal("cpu", (string)record["device"]!);

        // the resolved config is file + overrides and loads again as a config
        var resolved = ExperimentConfig.Load(Path.Combine(task, "train-ldm_config.json"));
        var original = ExperimentConfig.Load(Project.ConfigPath);
        Assert.Equal(1, resolved.Train.LdmEpochs);
        Assert.Equal(original.Ldm.DownChannels, resolved.Ldm.DownChannels);
        Assert.Equal(ConfigWriter.ToJson(original with { Train = original.Train with { LdmEpochs = 1, DiscStart = 1000 } }).ToJsonString(),
            ConfigWriter.ToJson(resolved).ToJsonString());

        string log = File.ReadAllText(Path.Combine(task, "train-ldm.log"));
        Assert.Matches(@"=== \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ ildm \S+: ildm train-ldm ", log);
        Assert.Contains("train-ldm: done in", log);
        Assert.DoesNotContain("\r", log);
    }

    [Fact]
    public void A_resume_that_changes_the_batch_size_is_refused_unless_allowed()
    {
        string[] resume = ["train-ldm", "--resume", "--set", "train_params:disc_start=1000"];
        var refused = Project.Run([.. resume, "--set", "train_params:ldm_epochs=1", "--set", "train_params:ldm_batch_size=4"]);
        FailsWith(refused, "train_params.ldm_batch_size changed since the run being resumed (train_params.ldm_batch_size was 8, now 4)");
        Assert.Contains("--allow-config-change", refused.Error);

        // more epochs do not break exact continuation; the autoencoder's training keys do not concern the UNet
        Ok(Project.Run([.. resume, "--set", "train_params:ldm_epochs=2", "--set", "train_params:autoencoder_lr=0.5"]));

        var allowed = Project.Run([.. resume, "--set", "train_params:ldm_epochs=2", "--set", "train_params:ldm_lr=0.01",
            "--allow-config-change"]);
        Ok(allowed);
        Assert.Contains("warning: --allow-config-change: resuming with a changed config (train_params.ldm_lr was 0.001, now 0.01)",
            allowed.Output);
        // the record now holds the changed value, so the next resume compares with it
        Assert.Equal(0.01, ExperimentConfig.Load(Path.Combine(Project.Task, "train-ldm_config.json")).Train.LdmLr);
    }

    [Fact]
    public void Sample_keeps_the_grids_of_earlier_runs()
    {
        string folder = Path.Combine(Project.Task, "samples");
        var before = Directory.Exists(folder) ? Directory.GetFiles(folder, "samples*.png").Length : 0;
        Ok(Project.Run("sample", "--sampler", "ddim", "--steps", "2"));
        var second = Project.Run("sample", "--sampler", "ddim", "--steps", "2");
        Ok(second);
        Assert.Equal(before + 2, Directory.GetFiles(folder, "samples*.png").Length);
        string expected = before + 2 == 2 ? "samples_2.png" : $"samples_{before + 2}.png";
        Assert.Contains(Path.Combine(folder, expected), second.Output);
    }

    [Fact]
    public void Ilgpu_cpu_says_it_is_for_testing_kernels_only()
    {
        using var project = new TinyProject(images: 8);
        var result = Ildm.RunIn(project.Folder, "sample", "--config", project.ConfigPath, "--device", "ilgpu-cpu",
            "--output", project.Folder);
        Assert.Equal(2, result.ExitCode); // nothing trained yet
        Assert.Contains("note: ilgpu-cpu runs the GPU kernels on ILGPU's CPU accelerator to test them", result.Error);
        Assert.DoesNotContain("note: ilgpu-cpu", project.Run("sample").Error);
    }

    [Fact]
    public void Sample_refuses_steps_for_the_ddpm_sampler()
    {
        FailsWith(Project.Run("sample", "--steps", "5"), "--steps and --eta apply to --sampler ddim");
        FailsWith(Project.Run("sample", "--sampler", "ddpm", "--eta", "0.5"), "the ddpm sampler runs all 100 steps");
    }

    /// <summary>An error our code raises with .NET's parameter text is shown without it; the log keeps type and stack.</summary>
    [Fact]
    public void User_errors_carry_no_dotnet_parameter_text_and_the_log_keeps_the_stack_trace()
    {
        var result = Project.Run("sample", "--sampler", "ddim", "--steps", "500");
        FailsWith(result, "error: DDIM steps (--steps) must be in [1, 100]");
        Assert.DoesNotContain("(Parameter", result.Error);
        Assert.DoesNotContain("Actual value", result.Error);
        string log = File.ReadAllText(Path.Combine(Project.Task, "sample.log"));
        Assert.Contains("System.ArgumentException", log);
        Assert.Contains(" at IlgpuDiffusion.", log);
    }

    [Fact]
    public void Infer_autoencoder_evaluates_max_images_with_a_progress_bar()
    {
        var result = Project.Run("infer-autoencoder", "--feature-count", "0", "--set", "dataset_params:max_images=5",
            "--set", "train_params:save_latents=false");
        Ok(result);
        Assert.Contains("evaluate 5/5 [", result.Output);
        var evaluation = JsonNode.Parse(File.ReadAllText(Path.Combine(Project.Task, "autoencoder_evaluation.json")))!;
        Assert.Equal(5, (int)evaluation["Images"]!);
    }
}

/// <summary>Command-line checks that need no trained model.</summary>
public class CommandLineTests
{
    [Fact]
    public void Bench_rejects_an_unknown_suite_before_running_any()
    {
        var result = Ildm.Run("bench", "--device", "cpu", "--suite", "engine", "conv", "bogus");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("'bogus'", result.Error);
        Assert.DoesNotContain("GFLOP", result.Output);
        Assert.DoesNotContain("bench on", result.Output);
    }

    [Fact]
    public void Parity_with_a_case_prefix_that_matches_nothing_fails()
    {
        var result = Ildm.Run("parity", "--fixtures", Fixtures.ParityFolder, "--device", "cpu", "--case", "op_");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no case of", result.Error);
        Assert.Contains("--case op_", result.Error);
        Assert.Contains("conv2d_k3_s1_p1", result.Error); // the cases there are listed
    }

    [Fact]
    public void Import_shows_the_same_arguments_in_both_helps()
    {
        var top = Ildm.Run("--help");
        Assert.Matches(@"(?m)^\s+import <pth>\s", top.Output);
        var import = Ildm.Run("import", "--help");
        Assert.Contains("ildm import <pth> [options]", import.Output);
        Assert.Contains("--out", import.Output);
        Assert.DoesNotContain("<safetensors>", top.Output + import.Output);
    }

    [Fact]
    public void A_named_lpips_weights_folder_that_does_not_exist_stops_training()
    {
        using var project = new TinyProject(images: 8);
        string missing = Path.Combine(project.Folder, "no-such-folder");
        var result = project.Run("train-autoencoder", "--lpips-weights", missing, "--set", "train_params:lpips=auto");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"--lpips-weights {missing}: no such folder", result.Error);
        Assert.False(File.Exists(Path.Combine(project.Task, "vqvae_autoencoder_ckpt.safetensors")));
    }

    /// <summary>A task folder that trained the KL-VAE is used as one by later stages that do not repeat --model vae.</summary>
    [Fact]
    public void Later_stages_use_the_vae_the_task_folder_trained()
    {
        using var project = new TinyProject(images: 8);
        var trained = project.Run("train-autoencoder", "--model", "vae", "--set", "train_params:perceptual_weight=0");
        Assert.True(trained.ExitCode == 0, trained.ToString());
        var inferred = project.Run("infer-autoencoder", "--feature-count", "0");
        Assert.True(inferred.ExitCode == 0, inferred.ToString());
        Assert.True(File.Exists(Path.Combine(project.Task, "vae_latents.safetensors")), inferred.ToString());
    }

    /// <summary>run-fashion-mnist.sh: arguments before any `STAGE:` marker go to every stage, those after one to that stage.</summary>
    [SkippableFact]
    public void The_main_job_script_passes_stage_arguments_to_their_stage_only()
    {
        Skip.If(OperatingSystem.IsWindows(), "bash script");
        var info = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Fixtures.RepoFile("scripts/run-fashion-mnist.sh"), "--device", "cpu", "sample:", "--sampler", "ddpm",
                     "train-ldm:", "--set", "train_params:ldm_epochs=8" })
            info.ArgumentList.Add(a);
        info.Environment["DRY_RUN"] = "1";
        info.Environment["OUTPUT"] = "out";
        using var process = System.Diagnostics.Process.Start(info)!;
        var lines = process.StandardOutput.ReadToEnd().Split('\n');
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        string Stage(string name) => Assert.Single(lines, l => l.StartsWith($"ildm {name} ", StringComparison.Ordinal));
        var own = new Dictionary<string, string> { ["train-ldm"] = " --set train_params:ldm_epochs=8", ["sample"] = " --sampler ddpm" };
        foreach (var stage in new[] { "train-autoencoder", "infer-autoencoder", "train-ldm", "sample", "evaluate" })
            Assert.EndsWith("--device cpu" + own.GetValueOrDefault(stage, ""), Stage(stage));
        Assert.DoesNotContain("--steps", Stage("sample")); // DDPM takes no step count
        Assert.DoesNotContain("ldm_epochs", Stage("train-autoencoder"));
    }
}
