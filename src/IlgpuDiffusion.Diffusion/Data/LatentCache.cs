using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>
/// Every training image's latent, N×C×h×w float32, in one safetensors file (tensor "latents") so
/// LDM training can skip the encoder. The metadata records the count, the shape, where the latents
/// came from and a fingerprint of the autoencoder checkpoint and the data set: a cache whose
/// fingerprint or count differs from the current run's is stale and is rebuilt, never used. A class-conditional run's
/// cache keeps each latent's class label too (tensor "labels"), so the latents and their conditions travel together.
/// </summary>
public sealed class LatentCache(string path)
{
    private const string TensorName = "latents";
    private const string LabelsName = "labels";
    private const string Format = "ilgpu-diffusion-latents/1";

    public string Path { get; } = path ?? throw new ArgumentNullException(nameof(path));

    /// <summary>SHA-256 over the autoencoder checkpoint's bytes and the data set's name, size and
    /// shape: retraining the autoencoder or pointing at other data changes it.</summary>
    public static string Fingerprint(string autoencoderCheckpointPath, IImageDataset dataset)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var checkpoint = File.OpenRead(autoencoderCheckpointPath))
        {
            var buffer = new byte[1 << 20];
            for (int read; (read = checkpoint.Read(buffer)) > 0;) hash.AppendData(buffer, 0, read);
        }
        hash.AppendData(Encoding.UTF8.GetBytes(
            $"\n{dataset.Name}\n{dataset.Count}\n{dataset.ImageChannels}\n{dataset.ImageSize}"));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>True when the file exists, is ours, holds <paramref name="expectedCount"/> latents and
    /// was made with <paramref name="fingerprint"/>; otherwise <paramref name="reason"/> says why not.
    /// Reads only the header: <see cref="Load"/> checks the data.</summary>
    public bool IsComplete(int expectedCount, string fingerprint, out string reason)
    {
        if (!File.Exists(Path))
        {
            reason = $"{Path} does not exist";
            return false;
        }
        IReadOnlyDictionary<string, string> metadata;
        try
        {
            metadata = SafeTensors.ReadMetadata(Path);
        }
        catch (InvalidDataException e)
        {
            reason = $"unreadable: {e.Message}";
            return false;
        }
        reason = metadata.GetValueOrDefault("format") != Format ? $"{Path} is not a latent cache ({Format})"
            : metadata.GetValueOrDefault("count") != expectedCount.ToString(CultureInfo.InvariantCulture)
                ? $"{Path} holds {metadata.GetValueOrDefault("count")} latents, {expectedCount} expected"
            : metadata.GetValueOrDefault("fingerprint") != fingerprint
                ? $"{Path} is stale: made from another autoencoder checkpoint or data set"
            : "";
        return reason.Length == 0;
    }

    /// <summary>Writes <paramref name="latents"/> (shape N×C×h×w) atomically, with their class <paramref name="labels"/>
    /// when given.</summary>
    public void Write(float[] latents, int[] shape, string source, string fingerprint, int[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length != 4 || shape[2] != shape[3])
        {
            throw new ArgumentException($"latents must be N×C×h×h, got [{string.Join(", ", shape)}]", nameof(shape));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["count"] = shape[0].ToString(CultureInfo.InvariantCulture),
            ["shape"] = string.Join(",", shape),
            ["source"] = source,
            ["fingerprint"] = fingerprint,
        };
        if (labels != null && labels.Length != shape[0])
            throw new ArgumentException($"{labels.Length} labels for {shape[0]} latents", nameof(labels));
        var tensors = new List<KeyValuePair<string, HostTensor>> { new(TensorName, HostTensor.FromFloats(shape, latents)) };
        if (labels != null) tensors.Add(new(LabelsName, HostTensor.FromInts([labels.Length], labels)));
        SafeTensors.Write(Path, tensors, metadata);
    }

    public LatentDataset Load()
    {
        var metadata = SafeTensors.ReadMetadata(Path);
        var tensors = SafeTensors.Read(Path);
        if (!tensors.TryGetValue(TensorName, out var latents))
        {
            throw new InvalidDataException($"{Path}: no '{TensorName}' tensor; not a latent cache");
        }
        var shape = latents.Shape;
        if (shape.Length != 4 || shape[2] != shape[3] || latents.Floats is null ||
            metadata.GetValueOrDefault("count") != shape[0].ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidDataException(
                $"{Path}: '{TensorName}' is {latents}, metadata count {metadata.GetValueOrDefault("count")}; " +
                "expected float32 N×C×h×h with N = count");
        }
        var labels = tensors.GetValueOrDefault(LabelsName)?.Ints;
        if (labels != null && labels.Length != shape[0])
            throw new InvalidDataException($"{Path}: {labels.Length} labels for {shape[0]} latents");
        return new LatentDataset($"latents {Path} ({metadata.GetValueOrDefault("source")})",
            latents.Floats, shape[0], shape[1], shape[2])
        { Labels = labels };
    }
}

/// <summary>Latents held in memory, served like images (values are the encoder's, not bounded).</summary>
public sealed class LatentDataset(string name, float[] values, int count, int channels, int size) : IImageDataset
{
    public string Name { get; } = name;
    public int Count { get; } = count;
    public int ImageChannels { get; } = channels;
    public int ImageSize { get; } = size;

    /// <summary>Each latent's class label, when the cache kept them.</summary>
    public int[]? Labels { get; init; }

    public void CopyTo(int index, Span<float> destination)
    {
        this.CheckIndex(index);
        this.CheckDestination(destination);
        values.AsSpan(index * destination.Length, destination.Length).CopyTo(destination);
    }
}
