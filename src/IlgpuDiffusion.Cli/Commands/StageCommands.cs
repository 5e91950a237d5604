using System.CommandLine;
using System.Reflection;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors.Distributed;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>The pipeline's four stages (the original's four scripts) and `import`. Each parses its
/// options, loads the config and hands over to the Diffusion layer; errors become one line on stderr.</summary>
internal static class StageCommands
{
    internal sealed class Common
    {
        public readonly Option<FileInfo> Config = new("--config")
        {
            Description = "JSON config (keys as the original's YAML); default configs/fashion-mnist.json",
            DefaultValueFactory = _ => new FileInfo(Path.Combine("configs", "fashion-mnist.json")),
        };
        public readonly Option<string> Device = CommonOptions.Device();
        public readonly Option<int?> Seed = new("--seed") { Description = "overrides train_params.seed" };
        public readonly Option<string[]> Set = new("--set")
        {
            Description = "config override section:key=value (e.g. train_params:ldm_epochs=2); repeatable",
            AllowMultipleArgumentsPerToken = false,
        };
        public readonly Option<DirectoryInfo> Output = new("--output")
        {
            Description = "folder that holds the task folder (train_params.task_name); default: the current folder",
            DefaultValueFactory = _ => new DirectoryInfo("."),
        };
        public readonly Option<string?> Model = new("--model")
        {
            Description = "vqvae or vae (the KL variant); default: vae when the task folder holds only a KL-VAE checkpoint, else vqvae",
        };

        private string _name = "";

        /// <summary>The data-parallel options, for the stages that run as the ranks of an MPI job (the trainers).</summary>
        public DistributedOptions? Distributed { get; init; }

        public Command Command(string name, string description, params Option[] extra)
        {
            _name = name;
            var command = new Command(name, description) { Config, Device, Seed, Set, Output, Model };
            foreach (var option in extra.Concat(Distributed?.All ?? [])) command.Options.Add(option);
            Model.AcceptOnlyFromAmong("vqvae", "vae");
            return command;
        }

        /// <summary>Runs <paramref name="stage"/> with the loaded config, recording the run in its task folder (see
        /// <see cref="RunRecord"/>; the log is <c>NAME.log</c> there). Known failures print one line (the log also gets
        /// the exception's type and stack trace) and exit non-zero; anything else is a bug and is thrown as it is.
        /// Training stops on Ctrl-C or SIGTERM after saving (<see cref="StopSignals"/>).</summary>
        public int Run(ParseResult parse, Action<TrainingRun, bool> stage, bool allowConfigChange = false)
        {
            DistributedJob job;
            try
            {
                job = DistributedJob.Start(parse, Distributed, parse.CommandResult.Command.Name);
            }
            catch (Exception e) when (e is ArgumentException or DistributedException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            using (job)
            {
                try
                {
                    var device = CommonOptions.Open(job.DeviceName(parse.GetValue(Device)!));
                    return job.Finish(device == null ? 2 : RunStage(parse, stage, device, job, allowConfigChange));
                }
                catch (Exception e) when (job.Size > 1)
                {
                    Console.Error.WriteLine($"error: {e}");
                    job.Abort(1);
                    throw;
                }
            }
        }

        private int RunStage(ParseResult parse, Action<TrainingRun, bool> stage, Tensors.Device device, DistributedJob job,
            bool allowConfigChange)
        {
            string[] arguments = Environment.GetCommandLineArgs()[1..];
            using var log = new RunLog();
            try
            {
                var overrides = (parse.GetValue(Set) ?? []).ToList();
                if (parse.GetValue(Seed) is { } seed) overrides.Add($"train_params:seed={seed}");
                var config = ExperimentConfig.Load(parse.GetValue(Config)!.FullName, overrides);
                var parallel = job.Parallel(parse, Distributed, device);
                var run = new TrainingRun(config, device, parse.GetValue(Output)!.FullName, job.Log)
                {
                    Parallel = parallel,
                    Record = parallel.IsMain ? new RunRecord(_name, arguments, Version, allowConfigChange) : null,
                };
                if (parallel.IsMain)
                {
                    run.EnsureTaskFolder(); // an unwritable --output is named before the log is opened there
                    log.Attach(RunRecord.LogFile(run.TaskFolder, _name),
                        $"=== {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z ildm {Version}: {RunRecord.CommandLine(arguments)}");
                }
                // one process only: the ranks of a job would have to agree on the step to stop after
                using var signals = _name.StartsWith("train-", StringComparison.Ordinal) && job.Size == 1
                    ? new StopSignals(run.Stop, log.Dispose) : null;
                stage(run, parse.GetValue(Model) is { } model ? model == "vae" : IAutoencoder.TrainedOnlyKlVae(run));
                return 0;
            }
            catch (TrainingInterruptedException e)
            {
                var again = arguments.Where(a => a is not ("--overwrite" or "--resume")).Append("--resume");
                Console.Error.WriteLine($"{e.Message}; continue with: {RunRecord.CommandLine(again)}");
                return StopSignals.ExitCode(e.Signal);
            }
            catch (Exception e) when (e is ConfigException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
                                          or InvalidOperationException or IOException or ArgumentException
                                          or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {CommonOptions.UserMessage(e)}");
                log.Detail(e.ToString());
                return 2;
            }
            catch (Exception e) when (e is TrainingDivergedException or InsufficientMemoryException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                log.Detail(e.ToString());
                return 1;
            }
            catch (Exception e)
            {
                log.Detail($"unexpected error (a bug: please report it with this log): {e}");
                throw;
            }
        }
    }

    private static string Version =>
        typeof(StageCommands).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public static IEnumerable<Command> Create()
    {
        yield return TrainAutoencoder();
        yield return InferAutoencoder();
        yield return TrainLdm();
        yield return Sample();
        yield return Import();
    }

    private static Option<bool> Resume() => new("--resume")
    {
        Description = "continue the run from its last checkpoint and training state",
    };

    private static Option<bool> Overwrite() => new("--overwrite")
    {
        Description = "start over even though checkpoints of an earlier run exist",
    };

    private static Option<bool> AllowConfigChange() => new("--allow-config-change")
    {
        Description = "with --resume: continue although the config differs from the resumed run's in a value that breaks exact "
            + "continuation (batch size, model shape, data, …)",
    };

    private static Command TrainAutoencoder()
    {
        var common = new Common { Distributed = new DistributedOptions() };
        var resume = Resume();
        var overwrite = Overwrite();
        var lpips = new Option<DirectoryInfo?>("--lpips-weights")
        {
            Description = "folder with vgg16-397923af.pth and vgg.pth (or lpips_vgg16.safetensors); "
                + $"default {Diffusion.Models.Lpips.DefaultWeightsFolder}",
        };
        var allowChange = AllowConfigChange();
        var command = common.Command(
            "train-autoencoder",
            "Train the VQ-VAE (or VAE) with reconstruction, codebook/commitment or KL, LPIPS and PatchGAN losses",
            resume, overwrite, allowChange, lpips);
        command.SetAction(parse => common.Run(parse, (run, vae) =>
            new AutoencoderTrainer(run, vae, parse.GetValue(lpips)?.FullName).Train(parse.GetValue(resume), parse.GetValue(overwrite)),
            parse.GetValue(allowChange)));
        return command;
    }

    private static Command InferAutoencoder()
    {
        var common = new Common();
        var featureCount = new Option<int>("--feature-count")
        {
            Description = "test images whose reconstructions are compared with them by FD-ResNet18 and KID (0: skip)",
            DefaultValueFactory = _ => AutoencoderInference.DefaultFeatureCount,
        };
        var command = common.Command(
            "infer-autoencoder",
            "Write input / encoded / reconstructed grids, report PSNR, SSIM, codebook use and perplexity, FD-ResNet18 and KID of "
            + "the reconstructions, and (save_latents) cache every training latent",
            featureCount);
        command.SetAction(parse => common.Run(parse, (run, vae) =>
            new AutoencoderInference(run, vae, NotNegative(parse.GetValue(featureCount), "--feature-count")).Run()));
        return command;
    }

    private static Command TrainLdm()
    {
        var common = new Common { Distributed = new DistributedOptions() };
        var resume = Resume();
        var overwrite = Overwrite();
        var allowChange = AllowConfigChange();
        var command = common.Command(
            "train-ldm",
            "Train the DDPM UNet on the autoencoder's latents (cached when complete, else encoded on the fly)",
            resume, overwrite, allowChange);
        command.SetAction(parse => common.Run(parse, (run, vae) =>
            new LdmTrainer(run, vae).Train(parse.GetValue(resume), parse.GetValue(overwrite)), parse.GetValue(allowChange)));
        return command;
    }

    private static Command Sample()
    {
        var common = new Common();
        var sampler = new Option<string>("--sampler")
        {
            Description = "ddpm (all steps, the original) or ddim",
            DefaultValueFactory = _ => "ddpm",
        };
        sampler.AcceptOnlyFromAmong("ddpm", "ddim");
        var steps = new Option<int?>("--steps") { Description = $"DDIM steps (≤ num_timesteps; default {DefaultDdimSteps})" };
        var eta = new Option<double?>("--eta") { Description = "DDIM noise scale: 0 deterministic (default), 1 like DDPM" };
        var saveEvery = new Option<int>("--save-every")
        {
            Description = "also save the decoded x0 estimate every N steps (0: only the final grid)",
            DefaultValueFactory = _ => 0,
        };
        var classOption = new Option<string?>("--class")
        {
            Description = "class-conditional models: the class to sample, by number or name (e.g. 7 or sneaker); "
                + "default: num_grid_rows samples of every class, one grid row per class",
        };
        var guidance = new Option<double?>("--guidance")
        {
            Description = "classifier-free guidance scale (1: conditional only, 0: unconditional); default train_params.cf_guidance_scale",
        };
        var count = new Option<int?>("--count")
        {
            Description = "make N samples, each written as its own PNG (sample_000000.png …), in batches; "
                + "the grid shows the first num_samples. Sample i depends only on the seed and i, not on the batch size",
        };
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "samples denoised at once with --count (bounds memory)",
            DefaultValueFactory = _ => 100,
        };
        var gridScale = new Option<int>("--grid-scale")
        {
            Description = "draw each pixel of the grids as N×N pixels (nearest neighbour; 28×28 images are hard to see at 1)",
            DefaultValueFactory = _ => 1,
        };
        var imageFolder = new Option<DirectoryInfo?>("--out")
        {
            Description = "folder for the PNGs of --count (default: <task>/samples/images, where `evaluate` looks)",
        };
        var command = common.Command(
            "sample",
            "Generate images: reverse diffusion in latent space, then decode",
            sampler, steps, eta, saveEvery, count, batchSize, imageFolder, classOption, guidance, gridScale);
        command.SetAction(parse => common.Run(parse, (run, vae) =>
        {
            var d = run.Config.Diffusion;
            var schedule = new LinearNoiseSchedule(d.NumTimesteps, d.BetaStart, d.BetaEnd);
            ISampler chosen = parse.GetValue(sampler) == "ddim"
                ? new DdimSampler(schedule, parse.GetValue(steps) ?? DefaultDdimSteps, parse.GetValue(eta) ?? 0)
                : parse.GetValue(steps) != null || parse.GetValue(eta) != null
                    ? throw new ArgumentException($"--steps and --eta apply to --sampler ddim; the ddpm sampler runs all "
                        + $"{d.NumTimesteps} steps of diffusion_params.num_timesteps (add --sampler ddim to sample in fewer)")
                    : new DdpmSampler(schedule);
            var export = parse.GetValue(count) is { } n
                ? new SampleExport(Positive(n, "--count"), Positive(parse.GetValue(batchSize), "--batch-size"),
                    parse.GetValue(imageFolder)?.FullName)
                : null;
            int scale = parse.GetValue(gridScale);
            if (scale is < 1 or > 16) throw new ArgumentException($"--grid-scale must be from 1 to 16, got {scale}");
            new LdmSampling(run, vae, scale).Sample(chosen, NotNegative(parse.GetValue(saveEvery), "--save-every"), export,
                parse.GetValue(classOption), parse.GetValue(guidance));
        }));
        return command;
    }

    private const int DefaultDdimSteps = 50;

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new ArgumentException($"{option} must be at least 1, got {value}");

    private static int NotNegative(int value, string option) =>
        value >= 0 ? value : throw new ArgumentException($"{option} must be 0 or more, got {value}");

    private static Command Import()
    {
        var input = new Argument<FileInfo>("pth") { Description = "a state dict written by torch.save(model.state_dict())" };
        // an option, not a second positional argument: the top-level help lists a command's arguments without marking
        // optional ones, so `import <pth> <safetensors>` there contradicted `import --help`
        var output = new Option<FileInfo?>("--out")
        {
            Description = "the safetensors file to write (default: beside the input, .safetensors)",
        };
        var command = new Command(
            "import",
            "Convert a PyTorch .pth state dict (no pickle code is run) to safetensors with the same names")
        {
            input, output,
        };
        command.SetAction(parse =>
        {
            var source = parse.GetValue(input)!;
            string target = parse.GetValue(output)?.FullName ?? Path.ChangeExtension(source.FullName, ".safetensors");
            try
            {
                var state = PthReader.Read(source.FullName);
                SafeTensors.Write(target, state, new Dictionary<string, string> { ["source"] = source.Name });
                Console.WriteLine($"import: {state.Count} tensors → {target}");
                return 0;
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }
}
