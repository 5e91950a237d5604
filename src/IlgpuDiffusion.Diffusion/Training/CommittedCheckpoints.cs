namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// A training stage's checkpoints as a command that only reads them finds them (sample, infer-autoencoder, and train-ldm
/// for its frozen autoencoder): checked as one set first, as a resume checks it, so weights of a set mixed from several
/// saves are refused naming the files, and a save cut short after its manifest is read from its committed ".next" files
/// (see <see cref="CheckpointSet.CommittedPaths"/>).
/// </summary>
internal sealed class CommittedCheckpoints
{
    private readonly TrainingRun _run;
    private readonly IReadOnlyDictionary<string, string?> _paths;

    private CommittedCheckpoints(TrainingRun run, string stateFile, params string[] stems)
    {
        _run = run;
        _paths = StageFiles.SetOf(run.File(stateFile), stems.Select(stem => run.File(stem + ".safetensors"))).CommittedPaths();
    }

    /// <summary>The autoencoder stage's set: the autoencoder, its discriminator and their training state.</summary>
    public static CommittedCheckpoints OfAutoencoder(TrainingRun run, IAutoencoder autoencoder) =>
        new(run, autoencoder.StateFile, autoencoder.CheckpointStem, autoencoder.DiscriminatorStem);

    /// <summary>The LDM stage's set: the UNet, its moving average (when trained with one) and their training state.</summary>
    public static CommittedCheckpoints OfLdm(TrainingRun run) =>
        new(run, LdmTrainer.StateFile, LdmTrainer.CheckpointStem, LdmTrainer.EmaStem);

    /// <summary>The file to read for <paramref name="stem"/>: its committed ".next" file, ours, or the original's .pth;
    /// null when there is none, or when the set's manifest does not name it (a file left from an earlier set).</summary>
    public string? Find(string stem)
    {
        string ours = _run.File(stem + ".safetensors");
        if (!_paths.TryGetValue(ours, out var path)) return _run.FindCheckpoint(stem);
        return path == null ? null : path != ours ? path : _run.FindCheckpoint(stem);
    }

    /// <summary>As <see cref="Find"/>, an error naming the file and the command that makes it when there is none.</summary>
    public string Require(string stem, string producedBy) => Find(stem) ?? _run.RequireCheckpoint(stem, producedBy);
}
