using System.Text.Json;
using System.Text.Json.Serialization;

namespace IlgpuDiffusion.Diffusion.Evaluation;

/// <summary>
/// The class each exported sample of a class-conditional model was asked for, by file name relative to the sample
/// folder. `sample --count` writes it beside the PNGs, so that `evaluate --features classifier` can tell which share of
/// the samples the classifier sees as the class they were asked to be (the classifier and the model must number the
/// classes alike, as both do when trained on the same data).
/// </summary>
public sealed record RequestedClasses(
    [property: JsonPropertyName("class_names")] IReadOnlyList<string> ClassNames,
    [property: JsonPropertyName("files")] IReadOnlyDictionary<string, int> Files)
{
    public const string FileName = "requested_classes.json";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public void Save(string folder) =>
        File.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, Indented));

    /// <summary>The list in <paramref name="folder"/>, or null when the samples there were not asked for classes.</summary>
    public static RequestedClasses? Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        RequestedClasses? list;
        try
        {
            list = JsonSerializer.Deserialize<RequestedClasses>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a list of requested classes ({e.Message})", e);
        }
        if (list?.ClassNames == null || list.Files == null)
            throw new InvalidDataException($"{path}: needs \"class_names\" and \"files\"");
        foreach (var (file, c) in list.Files)
            if (c < 0 || c >= list.ClassNames.Count)
                throw new InvalidDataException($"{path}: {file} asks for class {c}, outside 0–{list.ClassNames.Count - 1}");
        return list;
    }

    /// <summary>Of the images that asked for a class (<paramref name="requested"/> null: not asked), the share predicted
    /// as that class, overall and per class (null for a class no image asked for).</summary>
    public static (double Overall, double?[] PerClass) Shares(IReadOnlyList<int> predicted, IReadOnlyList<int?> requested,
        int classes)
    {
        var asked = new int[classes];
        var hit = new int[classes];
        for (int i = 0; i < predicted.Count; i++)
        {
            if (requested[i] is not int c) continue;
            asked[c]++;
            if (predicted[i] == c) hit[c]++;
        }
        int total = asked.Sum();
        if (total == 0) throw new ArgumentException("no image asked for a class", nameof(requested));
        return ((double)hit.Sum() / total, asked.Select((n, c) => n > 0 ? (double?)hit[c] / n : null).ToArray());
    }
}
