using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// What every stage shares: the config, the device, and the task folder (train_params.task_name under
/// the output root) with the reference's file names — ours as .safetensors; a checkpoint is read from
/// .safetensors or, failing that, from the original's .pth.
/// </summary>
public sealed class TrainingRun(ExperimentConfig config, Device device, string outputRoot, TextWriter log)
{
    public ExperimentConfig Config { get; } = config;
    public Device Device { get; } = device;
    public TextWriter Log { get; } = log;
    public string TaskFolder { get; } = Path.Combine(outputRoot, config.Train.TaskName);

    /// <summary>The ranks of a data-parallel job; rank 0 alone writes the task folder's files.</summary>
    public DataParallel Parallel { get; init; } = DataParallel.Single;

    public string File(string name) => Path.Combine(TaskFolder, name);

    /// <summary>What the run records in its task folder (null: nothing, as in tests that build a run directly).</summary>
    public RunRecord? Record { get; init; }

    /// <summary>Set by a signal: training stops after the current optimiser step, saving first.</summary>
    public StopRequest Stop { get; init; } = new();

    /// <summary>Called by each stage once its own checks have passed (see <see cref="RunRecord.Begin"/>).</summary>
    public void BeginRecord(bool resume = false, IReadOnlyCollection<string>? freeOnResume = null) =>
        Record?.Begin(this, resume, freeOnResume ?? RunRecord.OutputKeys);

    /// <summary>The exception that ends a run stopped by <see cref="Stop"/> once step <paramref name="step"/> is saved.</summary>
    public TrainingInterruptedException Interrupted(long step) => new(step, Stop.Signal ?? "a stop request", TaskFolder);

    /// <summary>The checkpoint to read for <paramref name="stem"/>: ours (.safetensors), else the original's (.pth).</summary>
    public string? FindCheckpoint(string stem)
    {
        foreach (var extension in new[] { ".safetensors", ".pth" })
            if (System.IO.File.Exists(File(stem + extension))) return File(stem + extension);
        return null;
    }

    public string RequireCheckpoint(string stem, string producedBy) => FindCheckpoint(stem)
        ?? throw new FileNotFoundException(
            $"no checkpoint {File(stem + ".safetensors")} (or .pth): run `ildm {producedBy}` with this config first",
            File(stem + ".safetensors"));

    /// <summary>Creates the task folder and proves it writable, so an unwritable --output fails before any work.</summary>
    public void EnsureTaskFolder()
    {
        string probe = File($".write-test-{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(TaskFolder);
            System.IO.File.WriteAllBytes(probe, []);
            System.IO.File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"cannot write to the task folder {TaskFolder} (--output and train_params.task_name): "
                + $"{e.Message}; choose a writable --output", e);
        }
    }

    /// <summary>The training images of dataset_params (IDX files or an image folder), shape-checked and cut to max_images.</summary>
    public IImageDataset OpenDataset()
    {
        var p = Config.Dataset;
        bool idx = HasIdxImages(p.ImPath, "") || System.IO.File.Exists(p.ImPath);
        IImageDataset dataset = idx
            ? DatasetConditions.OpenIdx(p.ImPath, Config.Ldm.ConditionConfig)
            : new ImageFolderDataset(p.ImPath, p.ImChannels, p.ImSize, p.SkipUnreadableImages);
        if (dataset is ImageFolderDataset folder)
            foreach (var warning in folder.Warnings) Log.WriteLine($"warning: {warning}");
        dataset.RequireShape(p.ImChannels, p.ImSize);
        return FirstMaxImages(dataset);
    }

    /// <summary>The first dataset_params.max_images items of <paramref name="dataset"/> (all when it is 0).</summary>
    public IImageDataset FirstMaxImages(IImageDataset dataset)
    {
        int max = Config.Dataset.MaxImages;
        return max > 0 && max < dataset.Count ? new SubsetDataset(dataset, max) : dataset;
    }

    /// <summary>The conditions dataset_params provides for <paramref name="dataset"/> (from <see cref="OpenDataset"/>),
    /// those ldm_params.condition_config lists; null for an unconditional config. Fails naming the key when one is missing.</summary>
    public DatasetConditions? OpenConditions(IImageDataset dataset) =>
        Config.Ldm.ConditionConfig is { } conditions ? DatasetConditions.Open(conditions, Config.Dataset, dataset) : null;

    /// <summary>Whether <paramref name="folder"/> holds IDX image files of a split ("train-", "t10k-", or "" for any).</summary>
    public static bool HasIdxImages(string folder, string split) =>
        Directory.Exists(folder) && Directory.EnumerateFiles(folder, $"{split}*images-idx3-ubyte*").Any();

    /// <summary>Fails with the step and the term when a loss is not finite, before anything is saved.</summary>
    public static void CheckFinite(long step, IReadOnlyDictionary<string, double> losses)
    {
        foreach (var (name, value) in losses)
            if (!double.IsFinite(value))
                throw new TrainingDivergedException($"loss term '{name}' is {value} at step {step}; "
                    + "the last good checkpoint was kept (lower the learning rate or check the data)");
    }

    /// <summary>Runs a step, turning a device out-of-memory failure into advice on the batch size.</summary>
    public static T GuardMemory<T>(Func<T> step, string batchKey, int batchSize)
    {
        try
        {
            return step();
        }
        catch (DeviceOutOfMemoryException e)
        {
            string halvedBatch = $"{batchKey.Replace('.', ':')}={Math.Max(1, batchSize / 2)}";
            throw new InsufficientMemoryException(
                $"the device ran out of memory at {batchKey} = {batchSize}; try --set {halvedBatch}", e);
        }
    }
}

/// <summary>A loss became NaN or infinite.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>The first <paramref name="count"/> items of a data set (dataset_params.max_images).</summary>
public sealed class SubsetDataset(IImageDataset inner, int count) : IImageDataset
{
    public IImageDataset Inner => inner;
    public string Name => $"{inner.Name} (first {count})";
    public int Count => count;
    public int ImageChannels => inner.ImageChannels;
    public int ImageSize => inner.ImageSize;

    public void CopyTo(int index, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
        inner.CopyTo(index, destination);
    }
}
