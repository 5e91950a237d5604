using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Diffusion.Tests.Data;

public class LatentCacheTests
{
    private sealed class TinyDataset(string name) : IImageDataset
    {
        public string Name => name;
        public int Count => 3;
        public int ImageChannels => 1;
        public int ImageSize => 4;
        public void CopyTo(int index, Span<float> destination) => destination.Fill(index);
    }

    [Fact]
    public void Round_trip_serves_latents_like_a_dataset()
    {
        using var folder = new TempFolder();
        var cache = new LatentCache(folder.File("latents.safetensors"));
        var latents = Enumerable.Range(0, 3 * 2 * 2 * 2).Select(i => i * 0.5f - 3f).ToArray();

        cache.Write(latents, [3, 2, 2, 2], "mnist train", "abc");

        Assert.True(cache.IsComplete(3, "abc", out var reason), reason);
        var dataset = cache.Load();
        Assert.Equal((3, 2, 2), (dataset.Count, dataset.ImageChannels, dataset.ImageSize));
        Assert.Equal(latents[8..16], dataset.Get(1));
        Assert.Contains("mnist train", dataset.Name);
        Assert.False(File.Exists(cache.Path + ".tmp"));
    }

    [Fact]
    public void A_class_conditional_cache_keeps_the_labels()
    {
        using var folder = new TempFolder();
        var cache = new LatentCache(folder.File("latents.safetensors"));
        cache.Write(new float[3 * 4], [3, 1, 2, 2], "mnist train", "abc", labels: [7, 0, 3]);
        Assert.Equal([7, 0, 3], cache.Load().Labels!);
        cache.Write(new float[3 * 4], [3, 1, 2, 2], "mnist train", "abc");
        Assert.Null(cache.Load().Labels);
        Assert.Throws<ArgumentException>(() => cache.Write(new float[3 * 4], [3, 1, 2, 2], "mnist train", "abc", labels: [1]));
    }

    [Fact]
    public void Missing_stale_short_or_foreign_caches_are_not_complete()
    {
        using var folder = new TempFolder();
        var cache = new LatentCache(folder.File("latents.safetensors"));
        Assert.False(cache.IsComplete(3, "abc", out var reason));
        Assert.Contains("does not exist", reason);

        cache.Write(new float[3 * 4], [3, 1, 2, 2], "mnist train", "abc");
        Assert.False(cache.IsComplete(4, "abc", out reason));
        Assert.Contains("holds 3 latents, 4 expected", reason);
        Assert.False(cache.IsComplete(3, "other", out reason));
        Assert.Contains("stale", reason);

        SafeTensors.Write(cache.Path, [new("weight", HostTensor.FromFloats([1], [1f]))]);
        Assert.False(cache.IsComplete(3, "abc", out reason));
        Assert.Contains("not a latent cache", reason);

        File.WriteAllText(cache.Path, "garbage");
        Assert.False(cache.IsComplete(3, "abc", out reason));
        Assert.Contains("unreadable", reason);
        Assert.Throws<InvalidDataException>(() => cache.Load());
    }

    [Fact]
    public void Fingerprint_follows_the_checkpoint_and_the_data()
    {
        using var folder = new TempFolder();
        var checkpoint = folder.File("vqvae.safetensors");
        File.WriteAllBytes(checkpoint, [1, 2, 3]);
        var data = new TinyDataset("IDX a");

        var first = LatentCache.Fingerprint(checkpoint, data);
        Assert.Equal(first, LatentCache.Fingerprint(checkpoint, new TinyDataset("IDX a")));
        Assert.NotEqual(first, LatentCache.Fingerprint(checkpoint, new TinyDataset("IDX b")));
        File.WriteAllBytes(checkpoint, [1, 2, 4]);
        Assert.NotEqual(first, LatentCache.Fingerprint(checkpoint, data));
    }
}
