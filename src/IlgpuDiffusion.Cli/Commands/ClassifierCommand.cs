using System.CommandLine;
using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Diffusion.Training;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>`train-classifier`: the small CNN whose features `evaluate --features classifier` uses.</summary>
internal static class ClassifierCommand
{
    public static Command Create()
    {
        var common = new StageCommands.Common();
        var epochs = new Option<int>("--epochs")
        {
            Description = "passes over the labelled training images",
            DefaultValueFactory = _ => 1,
        };
        var command = common.Command(
            "train-classifier",
            $"Train a small CNN on the labelled IDX images of dataset_params.im_path (e.g. Fashion-MNIST) and write "
            + $"{ImageClassifier.FileName} to the task folder, for `evaluate --features classifier`",
            epochs);
        command.SetAction(parse => common.Run(parse, (run, _) =>
        {
            int n = parse.GetValue(epochs);
            if (n < 1) throw new ArgumentException($"--epochs must be at least 1, got {n}");
            new ClassifierTrainer(run).Train(n);
        }));
        return command;
    }
}
