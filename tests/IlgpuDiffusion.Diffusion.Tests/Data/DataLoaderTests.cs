using System.Diagnostics;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests.Data;

public class DataLoaderTests
{
    /// <summary>Item i is the single value i (1×1×1), so a batch's data shows which items it holds.</summary>
    private sealed class NumberDataset(int count, Action<int>? onRead = null) : IImageDataset
    {
        public string Name => "numbers";
        public int Count => count;
        public int ImageChannels => 1;
        public int ImageSize => 1;

        public void CopyTo(int index, Span<float> destination)
        {
            onRead?.Invoke(index);
            destination[0] = index;
        }
    }

    /// <summary>The next <paramref name="batches"/> batches as index lists, with -1 marking an epoch end.</summary>
    private static List<int[]> Take(DataLoader loader, int batches)
    {
        var taken = new List<int[]>();
        while (taken.Count < batches)
        {
            if (!loader.TryNext(out var batch))
            {
                taken.Add([-1]);
                continue;
            }
            Assert.Equal(batch.Indices.Select(i => (float)i), batch.Data);
            taken.Add(batch.Indices);
        }
        return taken;
    }

    [Fact]
    public void Same_seed_same_batches_other_seed_other_order()
    {
        using var a = new DataLoader(new NumberDataset(50), 8, seed: 1111);
        using var b = new DataLoader(new NumberDataset(50), 8, seed: 1111);
        using var c = new DataLoader(new NumberDataset(50), 8, seed: 1112);

        var first = Take(a, 20);
        Assert.Equal(first, Take(b, 20));
        Assert.NotEqual(first, Take(c, 20));
    }

    [Fact]
    public void Ranks_take_disjoint_shares_that_make_up_the_whole_batches()
    {
        using var whole = new DataLoader(new NumberDataset(11), 4, seed: 5);
        using var rank0 = new DataLoader(new NumberDataset(11), 4, seed: 5) { Share = (0, 2) };
        using var rank1 = new DataLoader(new NumberDataset(11), 4, seed: 5) { Share = (1, 2) };
        for (int b = 0; b < 6; b++)
        {
            Assert.Equal(whole.TryNext(out var all), rank0.TryNext(out var first));
            Assert.Equal(all != null, rank1.TryNext(out var second));
            if (all == null) continue;
            Assert.Equal(all.Indices, first!.Indices.Concat(second!.Indices));
            Assert.Equal(first.Indices.Select(i => (float)i), first.Data);
            Assert.Equal(new BatchShard(0, all.Indices.Length / 2, all.Indices.Length), first.Shard);
            Assert.Equal(all.Indices.Length, first.Shard.Count + second.Shard.Count);
            Assert.Equal(whole.State, rank1.State); // the state is the whole batches', so a checkpoint resumes with any number of ranks
        }
        var tooMany = Assert.Throws<ArgumentException>(() => new DataLoader(new NumberDataset(11), 4, seed: 5) { Share = (0, 4) });
        Assert.Contains("batch of 3", tooMany.Message); // 11 = 4 + 4 + 3
    }

    [Fact]
    public void Every_epoch_is_a_new_permutation_and_ends_with_false()
    {
        using var loader = new DataLoader(new NumberDataset(10), 4, seed: 7);
        Assert.Equal(3, loader.BatchesPerEpoch);

        var batches = Take(loader, 8);

        Assert.Equal([-1], batches[3]);
        Assert.Equal([-1], batches[7]);
        Assert.Equal([4, 4, 2], batches[..3].Select(b => b.Length));
        var epoch0 = batches[..3].SelectMany(b => b).ToArray();
        var epoch1 = batches[4..7].SelectMany(b => b).ToArray();
        Assert.Equal(Enumerable.Range(0, 10), epoch0.Order());
        Assert.Equal(Enumerable.Range(0, 10), epoch1.Order());
        Assert.NotEqual(epoch0, epoch1);
        Assert.NotEqual(Enumerable.Range(0, 10), epoch0);
        Assert.Equal(new DataLoaderState(2, 0, loader.State.Seed, loader.State.Offset), loader.State);
    }

    [Fact]
    public void Drop_last_and_no_shuffle()
    {
        using var loader = new DataLoader(new NumberDataset(10), 4, seed: 7, shuffle: false, dropLast: true);

        Assert.Equal([[0, 1, 2, 3], [4, 5, 6, 7], [-1], [0, 1, 2, 3]], Take(loader, 4));
        Assert.Throws<ArgumentException>(() => new DataLoader(new NumberDataset(3), 4, seed: 7, dropLast: true));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)] // at the end of an epoch
    [InlineData(4)] // just after an epoch's end
    [InlineData(6)]
    public void Resume_from_saved_state_gives_the_same_following_batches(int consumedBefore)
    {
        using var original = new DataLoader(new NumberDataset(10), 4, seed: 1111, prefetch: 2);
        Take(original, consumedBefore);
        var saved = original.State;
        var expected = Take(original, 9);

        using var resumed = new DataLoader(new NumberDataset(10), 4, seed: 1111, prefetch: 1);
        Take(resumed, 2); // somewhere else entirely, with work prefetched
        resumed.Restore(saved);

        Assert.Equal(expected, Take(resumed, 9));
    }

    [Fact]
    public void Read_error_surfaces_as_is_and_the_batch_can_be_retried()
    {
        bool broken = true;
        using var loader = new DataLoader(new NumberDataset(6, i =>
        {
            if (broken && i == 2) throw new InvalidDataException("item 2 is broken");
        }), 6, seed: 3, shuffle: false);

        Assert.Equal("item 2 is broken", Assert.Throws<InvalidDataException>(() => loader.TryNext(out _)).Message);
        Assert.Equal(0, loader.State.Position);
        broken = false;
        Assert.Equal([[0, 1, 2, 3, 4, 5]], Take(loader, 1));
    }

    [Fact]
    public void Dispose_stops_the_prefetch_promptly()
    {
        int reads = 0;
        var loader = new DataLoader(new NumberDataset(1000, _ =>
        {
            Interlocked.Increment(ref reads);
            Thread.Sleep(5);
        }), 200, seed: 1, prefetch: 2);
        Take(loader, 1);

        var clock = Stopwatch.StartNew();
        loader.Dispose();
        int readsAtDispose = Volatile.Read(ref reads);
        Thread.Sleep(50);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"dispose took {clock.Elapsed}");
        Assert.Equal(readsAtDispose, Volatile.Read(ref reads));
        Assert.Throws<ObjectDisposedException>(() => loader.TryNext(out _));
    }

    [Fact]
    public void Batch_becomes_a_tensor()
    {
        using var loader = new DataLoader(new NumberDataset(5), 5, seed: 2, shuffle: false);
        Assert.True(loader.TryNext(out var batch));

        using var tensor = batch.ToTensor(Device.Cpu);

        Assert.Equal([5, 1, 1, 1], tensor.Shape);
        Assert.Equal([0f, 1, 2, 3, 4], tensor.ToArray());
    }
}
