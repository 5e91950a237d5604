using System.Globalization;
using System.Text.Json;
using IlgpuDiffusion.Diffusion.Imaging;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// A stage's checkpoint files (models, then the training state) written and read as one set, so that a kill or a full
/// disk at any instant leaves either the old set or the new one. A save writes every file under a ".next" name, then
/// the manifest (the commit point: the step and the files), then renames the ".next" files into place. Before a run
/// starts, <see cref="Recover"/> finishes the renames of a save whose manifest was written and deletes the ".next"
/// files of one whose manifest was not. Every file carries its step in its metadata (<see cref="StepKey"/>), so
/// <see cref="RequireConsistent"/> refuses a set mixed from several steps, naming the files; and the save it belongs to
/// (<see cref="SaveKey"/>), so that the ".next" files of a save cut short before its manifest are never taken for those
/// of the committed save, even where both are of one step (a run started over with --overwrite). The manifest names the
/// set's files: a file of the stage it does not name is left from an earlier set (the moving average of a run since
/// started over without one) and is not read; a save deletes such files once the new set is in place, and so does
/// <see cref="Recover"/> (they are <paramref name="formerFiles"/>, or files of this set the manifest does not name).
/// </summary>
internal sealed class CheckpointSet(string manifestPath, IReadOnlyList<string> files, IReadOnlyList<string>? formerFiles = null)
{
    /// <summary>The safetensors metadata key that holds the optimiser step a checkpoint file was written at.</summary>
    public const string StepKey = "step";

    /// <summary>The safetensors metadata key, and the manifest's, that tells one save from another of the same step.</summary>
    public const string SaveKey = "save";

    /// <summary>The suffix of a file written by a save that is not yet in place.</summary>
    public const string Pending = ".next";

    /// <summary>Test hook: called after each write or rename of a save with the path written, in the caller's
    /// execution context only (a test throws from it to stand for a kill at that instant).</summary>
    internal static readonly AsyncLocal<Action<string>?> AfterEachWrite = new();

    public string ManifestPath { get; } = manifestPath;

    /// <summary>Metadata naming <paramref name="step"/> (and <paramref name="save"/>, when given).</summary>
    public static Dictionary<string, string> StepMetadata(long step, string? save = null)
    {
        var metadata = new Dictionary<string, string> { [StepKey] = step.ToString(CultureInfo.InvariantCulture) };
        if (save != null) metadata[SaveKey] = save;
        return metadata;
    }

    /// <summary>Writes the set of <paramref name="step"/>: <paramref name="write"/>(file, target, metadata) writes one of
    /// the files with the metadata given (the step and this save) to the target path given, for every file in order.</summary>
    public void Save(long step, Action<string, string, IReadOnlyDictionary<string, string>> write)
    {
        string save = Guid.NewGuid().ToString("N");
        foreach (var file in files)
        {
            write(file, file + Pending, StepMetadata(step, save));
            AfterEachWrite.Value?.Invoke(file + Pending);
        }
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Manifest(step, files.Select(f => Path.GetFileName(f)).ToArray(), save));
        AtomicFile.Write(ManifestPath, stream =>
        {
            stream.Write(manifest);
            ((FileStream)stream).Flush(flushToDisk: true); // the commit point must reach the disk before the renames
        });
        AfterEachWrite.Value?.Invoke(ManifestPath);
        foreach (var file in files)
        {
            File.Move(file + Pending, file, overwrite: true);
            AfterEachWrite.Value?.Invoke(file);
        }
        foreach (var file in formerFiles ?? []) Retire(file);
    }

    /// <summary>Deletes a file of an earlier set (and its ".next" file), once the set that replaces it is committed.</summary>
    private static void Retire(string file)
    {
        File.Delete(file);
        File.Delete(file + Pending);
    }

    /// <summary>Completes or discards a save that was cut short: ".next" files of the manifest's step are renamed
    /// into place, others (a save that never reached its manifest) are deleted.</summary>
    public void Recover()
    {
        var committed = CommittedManifest();
        foreach (var file in files.Concat(formerFiles ?? []).Where(f => !IsNamed(f, committed))) Retire(file);
        foreach (var file in files)
        {
            string pending = file + Pending;
            File.Delete(pending + ".tmp"); // a write killed before its own rename
            if (!File.Exists(pending)) continue;
            if (IsCommitted(file, committed)) File.Move(pending, file, overwrite: true);
            else File.Delete(pending);
        }
    }

    /// <summary>Refuses a set whose files are of different steps (with a manifest, of another step than it names),
    /// naming each file and its step. Files without a step (older runs, the original's .pth) are not compared.</summary>
    public void RequireConsistent() => RequireSameStep(files, CommittedManifest());

    /// <summary>For a stage that only reads the set (sample, infer-autoencoder): the path to read for each file, its
    /// ".next" file where a save cut short after its manifest left one (the file <see cref="Recover"/> would rename into
    /// place), else the file itself; a set mixed from several steps is refused as by <see cref="RequireConsistent"/>.
    /// Nothing is renamed or deleted: a training run may be saving beside the reader, its ".next" files not yet
    /// committed.</summary>
    public IReadOnlyDictionary<string, string?> CommittedPaths()
    {
        var committed = CommittedManifest();
        var paths = files.ToDictionary(f => f, f => !IsNamed(f, committed) ? null : IsCommitted(f, committed) ? f + Pending : f);
        RequireSameStep(paths.Values.OfType<string>(), committed);
        return paths;
    }

    private Manifest? CommittedManifest() => File.Exists(ManifestPath) ? ReadManifest() : null;

    /// <summary>Whether <paramref name="file"/> belongs to the set <paramref name="committed"/> names (with no manifest, an
    /// older run's or a first save's cut short before it, every file does).</summary>
    private static bool IsNamed(string file, Manifest? committed) =>
        committed == null || committed.Files.Contains(Path.GetFileName(file));

    /// <summary>Whether <paramref name="file"/>'s ".next" file belongs to the save that <paramref name="committed"/> names.</summary>
    private static bool IsCommitted(string file, Manifest? committed) =>
        committed != null && IsNamed(file, committed) && File.Exists(file + Pending)
        && StepOf(file + Pending) == committed.Step && (committed.Save == null || SaveOf(file + Pending) == committed.Save);

    private void RequireSameStep(IEnumerable<string> paths, Manifest? committed)
    {
        var steps = paths.Where(File.Exists).Select(f => (File: f, Step: StepOf(f))).Where(f => f.Step != null).ToList();
        long? expected = committed?.Step ?? steps.LastOrDefault().Step;
        if (steps.All(f => f.Step == expected)) return;
        var listed = string.Join(", ", steps.Select(f => $"{f.File} (step {f.Step})"));
        string reference = committed != null ? $"{ManifestPath} names step {expected}" : "they differ";
        throw new InvalidDataException(
            $"the checkpoint set is torn: {listed}; {reference}. Its files come from different saves, and using them together "
            + "would mix them; restore the files of one step, or train the stage again with --overwrite (its first save "
            + "replaces every file of the set, the manifest included)");
    }

    private static long? StepOf(string path) => MetadataOf(path).TryGetValue(StepKey, out var text)
        ? long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long step) ? step
            : throw new InvalidDataException($"{path}: metadata '{StepKey}' is '{text}', not a step number")
        : null;

    private static string? SaveOf(string path) => MetadataOf(path).GetValueOrDefault(SaveKey);

    /// <summary>A safetensors file's metadata; none for the original's .pth.</summary>
    private static IReadOnlyDictionary<string, string> MetadataOf(string path) =>
        path.EndsWith(".safetensors" + Pending, StringComparison.Ordinal) || path.EndsWith(".safetensors", StringComparison.Ordinal)
            ? SafeTensors.ReadMetadata(path)
            : new Dictionary<string, string>();

    private Manifest ReadManifest()
    {
        try
        {
            var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllBytes(ManifestPath));
            if (manifest is { Step: >= 0, Files: not null }) return manifest;
        }
        catch (JsonException)
        {
        }
        throw new InvalidDataException($"{ManifestPath}: not a checkpoint manifest ({{\"Step\": N, \"Files\": [...]}}); "
            + "delete it to resume from the files' own steps");
    }

    /// <param name="Save">Null in the manifests of runs that did not yet tell saves apart.</param>
    private sealed record Manifest(long Step, string[] Files, string? Save = null);
}
