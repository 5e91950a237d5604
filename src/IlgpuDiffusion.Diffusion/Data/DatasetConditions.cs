using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>
/// The conditions of a training set, item by item (the data set's indices), for the types
/// <c>ldm_params.condition_config</c> lists: class labels (IDX label files, or the class subfolders of an image
/// folder: folder name = class, in ordinal order), text contexts (precomputed, from a safetensors file keyed by image
/// file name) and masks (index images in a mask folder, matched by file name stem). <see cref="Open"/> fails before
/// any training when the data does not provide a listed condition, naming the key.
/// </summary>
public sealed class DatasetConditions
{
    /// <summary>The tensor name of the empty prompt's context in a text-context file: the context of a dropped text.</summary>
    public const string EmptyPromptKey = "__empty_prompt__";

    /// <summary>Fashion-MNIST's classes in label order, so `ildm sample --class sneaker` works.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

    private ImageConditionConfig? _maskConfig;
    private string[]? _maskPaths;

    /// <summary>Class index per item (null without a class condition).</summary>
    public int[]? Labels { get; private init; }

    /// <summary>Class names in label order (saved with the run for `sample --class NAME`).</summary>
    public IReadOnlyList<string>? ClassNames { get; private init; }

    /// <summary>Context per item, each (tokens, text_embed_dim) row-major, and the empty prompt's.</summary>
    public float[][]? Contexts { get; private init; }
    public float[]? EmptyContext { get; private init; }
    public int ContextTokens { get; private init; }

    public bool HasMasks => _maskPaths != null;

    /// <summary>The same conditions with the class labels a latent cache kept (aligned with the same items).</summary>
    public DatasetConditions WithLabels(int[] labels) => new()
    {
        Labels = labels, ClassNames = ClassNames, Contexts = Contexts, EmptyContext = EmptyContext, ContextTokens = ContextTokens,
        _maskConfig = _maskConfig, _maskPaths = _maskPaths,
    };

    /// <summary>Opens IDX data with its labels when the config lists a class condition; a missing labels file then names the key.</summary>
    public static IdxDataset OpenIdx(string imPath, ConditionConfig? conditions)
    {
        if (conditions?.ClassCondition == null) return IdxDataset.Open(imPath);
        try
        {
            return IdxDataset.Open(imPath, withLabels: true);
        }
        catch (FileNotFoundException e) when (e.FileName?.Contains("labels-idx1", StringComparison.Ordinal) == true)
        {
            throw Missing("class", $"the IDX data has no labels file: {e.Message}");
        }
    }

    public static DatasetConditions Open(ConditionConfig config, DatasetParams dataset, IImageDataset data)
    {
        var inner = data is SubsetDataset subset ? subset.Inner : data;
        int count = data.Count;
        int[]? labels = null;
        IReadOnlyList<string>? names = null;
        if (config.ClassCondition is { } classes)
            (labels, names) = OpenLabels(classes, dataset, inner, count);
        float[][]? contexts = null;
        float[]? empty = null;
        int tokens = 0;
        if (config.TextCondition is { } text)
            (contexts, empty, tokens) = OpenContexts(text, dataset, FileNames(inner, count, "text", "text_context_path"));
        string[]? masks = null;
        if (config.ImageCondition is { } image)
            masks = OpenMasks(dataset, image, FileNames(inner, count, "image", "mask_path"));
        return new DatasetConditions
        {
            Labels = labels, ClassNames = names, Contexts = contexts, EmptyContext = empty, ContextTokens = tokens,
            _maskConfig = config.ImageCondition, _maskPaths = masks,
        };
    }

    private static InvalidDataException Missing(string type, string what) =>
        new($"ldm_params.condition_config.condition_types lists '{type}' but {what}");

    /// <summary>Class names "0", "1", … for data whose classes have no names.</summary>
    public static IReadOnlyList<string> NumberedClasses(int count) =>
        Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();

    private static (int[], IReadOnlyList<string>) OpenLabels(ClassConditionConfig classes, DatasetParams dataset, IImageDataset data,
        int count)
    {
        const string numClassesKey = "ldm_params.condition_config.class_condition_config.num_classes";
        int[] labels;
        IReadOnlyList<string> names;
        switch (data)
        {
            case IdxDataset { HasLabels: true } idx:
                labels = Enumerable.Range(0, count).Select(idx.Label).ToArray();
                bool fashion = dataset.Name.Contains("fashion", StringComparison.OrdinalIgnoreCase);
                names = fashion && classes.NumClasses == FashionMnistClasses.Count
                    ? FashionMnistClasses
                    : NumberedClasses(classes.NumClasses);
                break;
            case ImageFolderDataset folder:
                var classOf = Enumerable.Range(0, count).Select(i =>
                {
                    var relative = Path.GetRelativePath(folder.Folder, folder.PathOf(i));
                    int slash = relative.IndexOfAny(['/', '\\']);
                    return slash > 0 ? relative[..slash] : throw Missing("class",
                        $"{folder.PathOf(i)} is not in a class subfolder of dataset_params.im_path {folder.Folder} (folder name = class)");
                }).ToArray();
                names = classOf.Distinct().Order(StringComparer.Ordinal).ToList();
                var index = names.Select((n, i) => (n, i)).ToDictionary(e => e.n, e => e.i);
                labels = classOf.Select(c => index[c]).ToArray();
                break;
            default:
                throw Missing("class", $"{data.Name} has no labels (IDX data needs its *-labels-idx1-ubyte file; "
                    + "an image folder needs one subfolder per class)");
        }
        int largest = labels.Length == 0 ? -1 : labels.Max();
        if (largest >= classes.NumClasses || data is ImageFolderDataset && names.Count != classes.NumClasses)
            throw new ConfigException(numClassesKey,
                $"is {classes.NumClasses} but {data.Name} has {Math.Max(names.Count, largest + 1)} classes");
        return (labels, names);
    }

    /// <summary>Each item's image file name, for matching contexts and masks; IDX data has none.</summary>
    private static string[] FileNames(IImageDataset data, int count, string type, string key) => data is ImageFolderDataset folder
        ? Enumerable.Range(0, count).Select(i => Path.GetFileName(folder.PathOf(i))).ToArray()
        : throw Missing(type, $"{data.Name} has no image file names to match dataset_params.{key} by (use an image folder)");

    private static (float[][], float[], int) OpenContexts(TextConditionConfig text, DatasetParams dataset, string[] fileNames)
    {
        if (dataset.TextContextPath.Length == 0)
            throw Missing("text", "dataset_params.text_context_path is not set (a safetensors file of precomputed contexts)");
        if (!File.Exists(dataset.TextContextPath))
            throw new FileNotFoundException($"text contexts {dataset.TextContextPath} not found (dataset_params.text_context_path)");
        var file = SafeTensors.Read(dataset.TextContextPath);
        float[] Context(string key, string what)
        {
            if (!file.TryGetValue(key, out var tensor))
                throw new InvalidDataException($"{dataset.TextContextPath}: no context '{key}' ({what})");
            if (tensor.Shape is not [_, var dim] || dim != text.TextEmbedDim || tensor.Floats is null)
                throw new InvalidDataException($"{dataset.TextContextPath}: '{key}' is {tensor}; expected float32 (tokens, "
                    + $"{text.TextEmbedDim}) as ldm_params.condition_config.text_condition_config.text_embed_dim says");
            return tensor.Floats;
        }
        var empty = Context(EmptyPromptKey, "the empty prompt's, used where the text is dropped");
        int tokens = empty.Length / text.TextEmbedDim;
        var contexts = fileNames.Select(name => Context(name, "the image's")).ToArray();
        var mismatch = Array.FindIndex(contexts, c => c.Length != empty.Length);
        if (mismatch >= 0)
            throw new InvalidDataException($"{dataset.TextContextPath}: '{fileNames[mismatch]}' has "
                + $"{contexts[mismatch].Length / text.TextEmbedDim} tokens, the empty prompt {tokens}: pad every context to one length");
        return (contexts, empty, tokens);
    }

    private static string[] OpenMasks(DatasetParams dataset, ImageConditionConfig config, string[] fileNames)
    {
        if (dataset.MaskPath.Length == 0) throw Missing("image", "dataset_params.mask_path is not set (a folder of mask images)");
        if (!Directory.Exists(dataset.MaskPath))
            throw new DirectoryNotFoundException($"mask folder {dataset.MaskPath} not found (dataset_params.mask_path)");
        var byStem = Directory.EnumerateFiles(dataset.MaskPath)
            .GroupBy(Path.GetFileNameWithoutExtension).ToDictionary(g => g.Key!, g => g.Order(StringComparer.Ordinal).First());
        var masks = fileNames.Select(name => byStem.GetValueOrDefault(Path.GetFileNameWithoutExtension(name))
            ?? throw new FileNotFoundException($"no mask for {name} in {dataset.MaskPath} (dataset_params.mask_path; same file name stem)"))
            .ToArray();
        var distinct = masks.Distinct().ToArray();
        var problems = new string?[distinct.Length];
        Parallel.For(0, distinct.Length, i => problems[i] = MaskProblem(distinct[i], config));
        int first = Array.FindIndex(problems, p => p != null);
        if (first >= 0) throw new InvalidDataException($"{distinct[first]}: unusable mask (dataset_params.mask_path): {problems[first]}");
        return masks;
    }

    /// <summary>Before training, null when the mask is usable, else why not. From the header first: a regular file (a FIFO
    /// would block the open forever) holding an image of image_condition_w × image_condition_h, so nothing larger is ever
    /// decoded, and not an indexed-colour PNG, whose pixels would be read as the palette's grey levels instead of the
    /// indices the reference reads; then its pixels (small), so that a value beyond the mask channels fails now, not
    /// mid-training.</summary>
    private static string? MaskProblem(string path, ImageConditionConfig config)
    {
        var (info, problem) = ImageFolderDataset.Identify(path);
        if (info is not null && SizeProblem(info.Width, info.Height, config) is { } size) return size;
        if (info?.Metadata.GetPngMetadata().ColorType == PngColorType.Palette)
            return "an indexed-colour PNG: save masks as 8-bit greyscale, pixel value = class (0 background)";
        if (problem != null) return problem;
        try
        {
            ReadMask(path, config);
            return null;
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }
        catch (Exception e) when (ImageFolderDataset.IsDecodeFailure(e))
        {
            return $"unreadable image: {e.Message}";
        }
    }

    private static string? SizeProblem(int width, int height, ImageConditionConfig config) =>
        width == config.ImageConditionW && height == config.ImageConditionH ? null
            : $"{width}×{height}, but ldm_params.condition_config.image_condition_config says "
                + $"{config.ImageConditionW}×{config.ImageConditionH}";

    /// <summary>A mask's pixel values, row-major; a value beyond image_condition_input_channels is an error naming it.</summary>
    private static byte[] ReadMask(string path, ImageConditionConfig config)
    {
        using var image = Image.Load<L8>(path);
        if (SizeProblem(image.Width, image.Height, config) is { } size) throw new InvalidDataException(size);
        int w = config.ImageConditionW, channels = config.ImageConditionInputChannels;
        var values = new byte[w * config.ImageConditionH];
        image.CopyPixelDataTo(values);
        int beyond = Array.FindIndex(values, v => v > channels);
        if (beyond >= 0)
            throw new InvalidDataException($"pixel value {values[beyond]} at (x {beyond % w}, y {beyond / w}) is beyond "
                + $"ldm_params.condition_config.image_condition_config.image_condition_input_channels {channels} "
                + "(a value k ≥ 1 marks channel k − 1, 0 the background)");
        return values;
    }

    /// <summary>Item <paramref name="index"/>'s mask as image_condition_input_channels one-hot planes of
    /// image_condition_h × image_condition_w: pixel value k ≥ 1 sets channel k − 1, 0 is background.</summary>
    public void CopyMask(int index, Span<float> destination)
    {
        var config = _maskConfig ?? throw new InvalidOperationException("the data set has no masks");
        var path = _maskPaths![index];
        byte[] values;
        try
        {
            values = ReadMask(path, config); // checked before training; read again here in case the file changed since
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: unusable mask (dataset_params.mask_path): {e.Message}", e);
        }
        int plane = config.ImageConditionH * config.ImageConditionW;
        destination.Clear();
        for (int p = 0; p < values.Length; p++)
            if (values[p] > 0) destination[(values[p] - 1) * plane + p] = 1;
    }
}
