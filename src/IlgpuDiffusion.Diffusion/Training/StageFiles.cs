using System.Text.Json;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// Saving and resuming a training stage: model checkpoints, then the training state (optimisers,
/// counters, generator and loader positions) — each written atomically, the state last, so a kill at
/// any moment leaves a consistent, resumable set.
/// </summary>
internal sealed class StageFiles(TrainingRun run, string statePath, IReadOnlyDictionary<string, (Module Model, Adam Optimizer)> optimizers)
{
    /// <summary>Refuses to start over a finished or interrupted run unless asked to resume or overwrite.</summary>
    public void GuardFreshStart(bool resume, bool overwrite, IEnumerable<string> checkpointStems, string command)
    {
        if (resume || overwrite) return;
        var existing = checkpointStems.Select(run.FindCheckpoint).FirstOrDefault(p => p != null);
        if (existing != null)
            throw new InvalidOperationException(
                $"{existing} already exists: pass --resume to continue that run or --overwrite to start over (`ildm {command}`)");
    }

    public void Save(IEnumerable<(Module Model, string Stem)> models, long step, int epoch, Generator generator, DataLoader loader)
    {
        if (!run.Parallel.IsMain) return;
        foreach (var (model, stem) in models) Checkpoint.SaveModel(model, run.File(stem + ".safetensors"));
        TrainingState.Save(statePath, optimizers,
            new TrainingProgress(step, epoch, generator.Seed, generator.Offset, JsonSerializer.Serialize(loader.State)));
    }

    /// <summary>Loads the checkpoints and the training state; returns the step to continue from.</summary>
    public TrainingProgress Resume(IEnumerable<(Module Model, string Stem)> models, Generator generator, DataLoader loader)
    {
        foreach (var (model, stem) in models) Checkpoint.LoadModel(model, run.File(stem + ".safetensors"));
        var progress = TrainingState.Load(statePath, optimizers);
        generator.SetState(progress.GeneratorSeed, progress.GeneratorOffset);
        loader.Restore(JsonSerializer.Deserialize<DataLoaderState>(progress.LoaderState));
        return progress;
    }
}
