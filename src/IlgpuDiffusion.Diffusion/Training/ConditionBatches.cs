using System.Text.Json;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// The conditional UNet's inputs for a batch of data-set items, with the reference's per-sample condition dropout
/// (train_ddpm_cond.py): each listed condition of each sample is dropped with its cond_drop_prob — the class's
/// one-hot row zeroed, the text replaced by the empty prompt's context, the mask zeroed — so the model also learns
/// the unconditional prediction classifier-free guidance needs. The draws come from the trainer's seeded generator,
/// so a resumed run repeats them.
/// </summary>
public sealed class ConditionBatches(ConditionConfig config, DatasetConditions data, Device device)
{
    /// <summary>The file in the task folder that keeps the class names of a class-conditional run, in label order (a later
    /// run without classes retires it with its first save, as it does the moving average).</summary>
    public const string ClassListFile = "classes.json";

    /// <summary>The conditions of <paramref name="indices"/>; with a <paramref name="dropout"/> generator each is dropped
    /// with its probability, without one all are kept.</summary>
    public UNetConditions ForItems(IReadOnlyList<int> indices, Generator? dropout)
    {
        int n = indices.Count;
        Tensor? classes = null, text = null, image = null;
        if (config.ClassCondition is { } c)
            classes = UNetConditions.OneHot(indices.Select(i => data.Labels![i]).ToArray(), c.NumClasses, device,
                Keep(n, c.CondDropProb, dropout));
        if (config.TextCondition is { } t)
        {
            var keep = Keep(n, t.CondDropProb, dropout);
            text = Contexts(Enumerable.Range(0, n).Select(b => keep[b] ? data.Contexts![indices[b]] : data.EmptyContext!).ToList(), t);
        }
        if (config.ImageCondition is { } m)
        {
            var keep = Keep(n, m.CondDropProb, dropout);
            int length = m.ImageConditionInputChannels * m.ImageConditionH * m.ImageConditionW;
            var masks = new float[n * length];
            Parallel.For(0, n, b =>
            {
                if (keep[b]) data.CopyMask(indices[b], masks.AsSpan(b * length, length));
            });
            image = Tensor.FromArray(masks, [n, m.ImageConditionInputChannels, m.ImageConditionH, m.ImageConditionW], device);
        }
        return new UNetConditions(classes, text, image);
    }

    /// <summary>The conditions of <paramref name="n"/> samples of one class each (<paramref name="labels"/>), and the
    /// unconditional ones (no class, empty prompt, no mask) that classifier-free guidance contrasts them with.</summary>
    public static (UNetConditions Conditional, UNetConditions Unconditional) ForClasses(ConditionConfig config, IReadOnlyList<int> labels,
        Device device)
    {
        if (config.TextCondition != null || config.ImageCondition != null)
            throw new InvalidOperationException("sample: text and mask conditions are not supported by `sample` yet; "
                + "only ldm_params.condition_config.condition_types ['class']");
        int numClasses = config.ClassCondition!.NumClasses;
        return (new UNetConditions(UNetConditions.OneHot(labels, numClasses, device)),
            new UNetConditions(Tensor.Zeros([labels.Count, numClasses], device)));
    }

    /// <summary>keep[b] = (u_b ≥ p) for u_b uniform in [0, 1) (24-bit steps) from <paramref name="generator"/>;
    /// all true without one.</summary>
    public static bool[] Keep(int count, double dropProbability, Generator? generator)
    {
        if (generator == null) return Enumerable.Repeat(true, count).ToArray();
        const int steps = 1 << 24;
        return generator.NextInts(count, steps).Select(u => u >= dropProbability * steps).ToArray();
    }

    private Tensor Contexts(IReadOnlyList<float[]> rows, TextConditionConfig text)
    {
        var values = new float[rows.Count * rows[0].Length];
        for (int b = 0; b < rows.Count; b++) rows[b].CopyTo(values, b * rows[0].Length);
        return Tensor.FromArray(values, [rows.Count, data.ContextTokens, text.TextEmbedDim], device);
    }

    public static void SaveClassList(string path, IReadOnlyList<string> names) => File.WriteAllText(path, JsonSerializer.Serialize(names));

    /// <summary>The class names a run saved, or the label numbers when it saved none.</summary>
    public static IReadOnlyList<string> LoadClassList(string path, int numClasses) => File.Exists(path)
        ? JsonSerializer.Deserialize<string[]>(File.ReadAllText(path))
            ?? throw new InvalidDataException($"{path}: not a list of class names")
        : DatasetConditions.NumberedClasses(numClasses);

    /// <summary>A class given by number or by name (case-insensitive; '-' and ' ' alike), as `sample --class` takes it.</summary>
    public static int ResolveClass(string requested, IReadOnlyList<string> names)
    {
        static string Normal(string s) => s.Trim().Replace(' ', '-').ToLowerInvariant();
        if (int.TryParse(requested, out int number) && number >= 0 && number < names.Count) return number;
        for (int i = 0; i < names.Count; i++)
            if (Normal(names[i]) == Normal(requested)) return i;
        throw new ArgumentException(
            $"--class {requested}: not a class of this run (0–{names.Count - 1} or one of: {string.Join(", ", names)})");
    }
}
