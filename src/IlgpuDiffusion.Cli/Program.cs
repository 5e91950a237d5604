using System.CommandLine;
using IlgpuDiffusion.Cli.Commands;

var root = new RootCommand("ildm: latent diffusion (VQ-VAE + DDPM UNet) on CPU, CUDA or OpenCL, without Python");
root.Subcommands.Add(DevicesCommand.Create());
root.Subcommands.Add(ParityCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
foreach (var stage in StageCommands.Create()) root.Subcommands.Add(stage);
root.Subcommands.Add(EvaluateCommand.Create());
root.Subcommands.Add(ClassifierCommand.Create());
return root.Parse(args).Invoke();
