using System.Text.Json;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.IO;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// Model checkpoints carry the reference's state-dict names, so files move between the two projects:
/// ours are safetensors (written to a temporary file and renamed, so a kill never leaves half a file),
/// and the original's <c>torch.save(model.state_dict())</c> <c>.pth</c> files are accepted wherever a
/// checkpoint is read. Optimiser moments and counters live in a separate training-state file beside it.
/// </summary>
public static class Checkpoint
{
    public static void SaveModel(Module model, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensors.Write(path, model.StateDictToHost(), metadata);

    /// <summary>Reads a state dict from <c>.safetensors</c> or a PyTorch <c>.pth</c>; errors name the file.</summary>
    public static IReadOnlyDictionary<string, HostTensor> ReadStateDict(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{path}' does not exist", path);
        // a committed save's ".next" file (CheckpointSet) has the format of the name it is renamed to
        string name = path.EndsWith(CheckpointSet.Pending, StringComparison.Ordinal) ? path[..^CheckpointSet.Pending.Length] : path;
        return Path.GetExtension(name).ToLowerInvariant() switch
        {
            ".pth" or ".pt" => PthReader.Read(path),
            ".safetensors" => SafeTensors.Read(path),
            var other => throw new InvalidDataException(
                $"checkpoint '{path}': unknown format '{other}' (expected .safetensors, or .pth written by torch.save)"),
        };
    }

    /// <summary>Loads weights into <paramref name="model"/>; a missing, unexpected or mis-shaped entry is an error
    /// naming it and the file.</summary>
    public static void LoadModel(Module model, string path)
    {
        var state = ReadStateDict(path);
        WeightCheck.RequireSane(state, path);
        using var noGrad = Autograd.NoGrad();
        model.LoadStateDict(state, strict: true, source: path);
    }
}

/// <summary>Where a run stands: counters, the random generator's state and the data loader's position.</summary>
public sealed record TrainingProgress(long Step, int Epoch, ulong GeneratorSeed, ulong GeneratorOffset, string LoaderState);

/// <summary>
/// Resume data: every optimiser's per-parameter moments and step counts (by parameter name) plus the
/// <see cref="TrainingProgress"/>, in one safetensors file (atomic write).
/// </summary>
public static class TrainingState
{
    private const string ProgressKey = "progress";

    /// <param name="setMetadata">The checkpoint set's metadata (<see cref="CheckpointSet.StepMetadata"/>); by default the
    /// progress's step alone.</param>
    public static void Save(string path, IReadOnlyDictionary<string, (Module Model, Adam Optimizer)> optimizers, TrainingProgress progress,
        IReadOnlyDictionary<string, string>? setMetadata = null)
    {
        var tensors = new List<KeyValuePair<string, HostTensor>>();
        foreach (var (name, (model, adam)) in optimizers)
            foreach (var (param, tensor) in model.NamedParameters())
                if (adam.StateOf(tensor) is { } s)
                {
                    string prefix = $"{name}.{param}.";
                    tensors.Add(KeyValuePair.Create(prefix + "exp_avg", s.ExpAvg.ToHost()));
                    tensors.Add(KeyValuePair.Create(prefix + "exp_avg_sq", s.ExpAvgSq.ToHost()));
                    tensors.Add(KeyValuePair.Create(prefix + "step", HostTensor.FromInts([], [checked((int)s.Step)])));
                }
        var metadata = new Dictionary<string, string>(setMetadata ?? CheckpointSet.StepMetadata(progress.Step))
        {
            [ProgressKey] = JsonSerializer.Serialize(progress),
        };
        SafeTensors.Write(path, tensors, metadata);
    }

    /// <summary>Restores optimiser state into <paramref name="optimizers"/> and returns the saved progress.</summary>
    public static TrainingProgress Load(string path, IReadOnlyDictionary<string, (Module Model, Adam Optimizer)> optimizers)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"training state '{path}' does not exist (it is written beside the checkpoints; resume needs both)", path);
        var tensors = SafeTensors.Read(path);
        WeightCheck.RequireSane(tensors, path, boundMagnitude: false);
        var metadata = SafeTensors.ReadMetadata(path);
        if (!metadata.TryGetValue(ProgressKey, out var json))
            throw new InvalidDataException($"training state '{path}': no '{ProgressKey}' entry in its metadata");
        var progress = ParseProgress(json, path);
        foreach (var (name, (model, adam)) in optimizers)
            foreach (var (param, tensor) in model.NamedParameters())
            {
                string prefix = $"{name}.{param}.";
                if (!tensors.ContainsKey(prefix + "exp_avg")) continue; // never stepped
                var m = Moment(prefix + "exp_avg");
                var v = Moment(prefix + "exp_avg_sq");
                var step = tensors.TryGetValue(prefix + "step", out var st) && st.Ints is [>= 0 and var count] ? count
                    : throw new InvalidDataException($"training state '{path}': '{prefix}step' is missing or not one count");
                adam.SetState(tensor, m, v, step);

                float[] Moment(string key) => !tensors.TryGetValue(key, out var moment)
                    ? throw new InvalidDataException($"training state '{path}': '{key}' is missing")
                    : !moment.Shape.SequenceEqual(tensor.Shape) || moment.Floats is null
                        ? throw new InvalidDataException($"training state '{path}': '{key}' is {moment.DType} of shape "
                            + $"{Tensor.ShapeString(moment.Shape)}, the parameter float32 of {Tensor.ShapeString(tensor.Shape)}")
                        : moment.Floats;
            }
        return progress;
    }

    private static TrainingProgress ParseProgress(string json, string path)
    {
        TrainingProgress? progress;
        try
        {
            progress = JsonSerializer.Deserialize<TrainingProgress>(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"training state '{path}': '{ProgressKey}' is not valid progress JSON: {e.Message}", e);
        }
        return progress is { Step: >= 0, Epoch: >= 0, LoaderState: not null }
            ? progress
            : throw new InvalidDataException($"training state '{path}': '{ProgressKey}' lacks a step, epoch or loader state");
    }
}
