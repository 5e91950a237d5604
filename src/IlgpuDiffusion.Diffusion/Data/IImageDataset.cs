using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>A fixed, indexed set of square images (or latents), each C×S×S float32, row-major.
/// Image sets give values in [−1, 1]; a latent set gives the encoder's values as they are.
/// <see cref="CopyTo"/> may be called from several threads at once (the data loader gathers a batch
/// in parallel on a background task), so implementations keep no mutable per-call state.</summary>
public interface IImageDataset
{
    /// <summary>Where the data comes from, for messages and cache fingerprints.</summary>
    string Name { get; }

    int Count { get; }

    int ImageChannels { get; }

    /// <summary>Height and width.</summary>
    int ImageSize { get; }

    /// <summary>Writes item <paramref name="index"/> (ImageChannels·ImageSize² values) into
    /// <paramref name="destination"/>.</summary>
    void CopyTo(int index, Span<float> destination);
}

public static class ImageDatasetExtensions
{
    public static int ValuesPerItem(this IImageDataset dataset) =>
        dataset.ImageChannels * dataset.ImageSize * dataset.ImageSize;

    /// <summary>Item <paramref name="index"/> as a new array.</summary>
    public static float[] Get(this IImageDataset dataset, int index)
    {
        var values = new float[dataset.ValuesPerItem()];
        dataset.CopyTo(index, values);
        return values;
    }

    /// <summary>Items <paramref name="indices"/> as one (N, C, S, S) tensor on <paramref name="device"/>.</summary>
    public static Tensor Batch(this IImageDataset dataset, IReadOnlyList<int> indices, Device device)
    {
        int per = dataset.ValuesPerItem();
        var data = new float[indices.Count * per];
        for (int i = 0; i < indices.Count; i++) dataset.CopyTo(indices[i], data.AsSpan(i * per, per));
        return Tensor.FromArray(data, [indices.Count, dataset.ImageChannels, dataset.ImageSize, dataset.ImageSize], device);
    }

    /// <summary>Fails, naming the config keys, when the data does not have the configured shape.</summary>
    public static void RequireShape(this IImageDataset dataset, int imageChannels, int imageSize)
    {
        if (dataset.ImageChannels != imageChannels || dataset.ImageSize != imageSize)
        {
            throw new InvalidDataException(
                $"{dataset.Name}: images are {dataset.ImageChannels}×{dataset.ImageSize}×{dataset.ImageSize} " +
                $"but dataset_params says im_channels {imageChannels}, im_size {imageSize}");
        }
    }

    /// <summary>An 8-bit pixel to [−1, 1] with the reference's float32 steps: ToTensor's v / 255, then 2x − 1.</summary>
    internal static float ByteToSigned(byte value) => value / 255f * 2f - 1f;

    internal static void CheckIndex(this IImageDataset dataset, int index)
    {
        if ((uint)index >= (uint)dataset.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index,
                $"{dataset.Name} has {dataset.Count} items");
        }
    }

    internal static void CheckDestination(this IImageDataset dataset, Span<float> destination)
    {
        if (destination.Length != dataset.ValuesPerItem())
        {
            throw new ArgumentException(
                $"destination holds {destination.Length} values, an item of {dataset.Name} has {dataset.ValuesPerItem()}",
                nameof(destination));
        }
    }
}
