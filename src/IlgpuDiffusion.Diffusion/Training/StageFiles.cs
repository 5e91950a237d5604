using System.Text.Json;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// Saving and resuming a training stage: model checkpoints, then the training state (optimisers,
/// counters, generator and loader positions), written as one <see cref="CheckpointSet"/>, so a kill at
/// any moment leaves a consistent, resumable set. <paramref name="formerFiles"/> are files (names in the task folder) an
/// earlier run of the stage may have left that this one does not write (the moving average or the class list of a run
/// without one): its saves retire them.
/// </summary>
internal sealed class StageFiles(TrainingRun run, string statePath, IReadOnlyDictionary<string, (Module Model, Adam Optimizer)> optimizers,
    IReadOnlyList<string>? formerFiles = null)
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
        var paths = models.ToDictionary(m => run.File(m.Stem + ".safetensors"), m => m.Model);
        var progress = new TrainingProgress(step, epoch, generator.Seed, generator.Offset, JsonSerializer.Serialize(loader.State));
        SetOf(statePath, paths.Keys, FormerFiles).Save(step, (file, target, metadata) =>
        {
            if (paths.TryGetValue(file, out var model)) Checkpoint.SaveModel(model, target, metadata);
            else TrainingState.Save(target, optimizers, progress, metadata);
        });
    }

    /// <summary>Loads the checkpoints and the training state, after completing or discarding a save that was cut short
    /// and refusing a set mixed from several steps; returns the step to continue from.</summary>
    public TrainingProgress Resume(IEnumerable<(Module Model, string Stem)> models, Generator generator, DataLoader loader)
    {
        models = models.ToList();
        var set = SetOf(statePath, models.Select(m => run.File(m.Stem + ".safetensors")), FormerFiles);
        if (run.Parallel.IsMain) set.Recover();
        run.Parallel.Group.AllGather(0); // the other ranks read once rank 0 has completed or discarded a cut-short save
        set.RequireConsistent();
        foreach (var (model, stem) in models) Checkpoint.LoadModel(model, run.File(stem + ".safetensors"));
        var progress = TrainingState.Load(statePath, optimizers);
        generator.SetState(progress.GeneratorSeed, progress.GeneratorOffset);
        loader.Restore(LoaderState(progress.LoaderState, loader));
        return progress;
    }

    private DataLoaderState LoaderState(string json, DataLoader loader)
    {
        try
        {
            var state = JsonSerializer.Deserialize<DataLoaderState>(json);
            if (state is { Epoch: >= 0, Position: >= 0 } && state.Position <= loader.BatchesPerEpoch) return state;
        }
        catch (JsonException)
        {
        }
        throw new InvalidDataException($"training state '{statePath}': the data loader position '{json}' does not fit "
            + $"{loader.BatchesPerEpoch} batches an epoch (another data set or batch size?); resume with the run's config");
    }

    private string[] FormerFiles => [.. (formerFiles ?? []).Select(run.File)];

    /// <summary>The models' files and the training state, written last; the manifest sits beside the state.</summary>
    public static CheckpointSet SetOf(string statePath, IEnumerable<string> modelPaths, IReadOnlyList<string>? formerFiles = null) =>
        new(Path.ChangeExtension(statePath, ".manifest.json"), [.. modelPaths, statePath], formerFiles);
}
