namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>One rank's share of a batch in data-parallel training: items [<see cref="Start"/>, Start + <see cref="Count"/>)
/// of the <see cref="Total"/> items of the whole (global) batch.</summary>
public readonly record struct BatchShard(int Start, int Count, int Total)
{
    /// <summary>The share's weight in a loss averaged over the whole batch: a rank's batch-mean loss times its weight,
    /// summed over the ranks, is the whole batch's mean.</summary>
    public float Weight => (float)Count / Total;

    /// <summary>Rank <paramref name="rank"/>'s share of a batch of <paramref name="total"/> items split as evenly as possible
    /// over <paramref name="ranks"/> ranks, in rank order.</summary>
    public static BatchShard Of(int total, int rank, int ranks)
    {
        int start = (int)((long)total * rank / ranks), end = (int)((long)total * (rank + 1) / ranks);
        return new BatchShard(start, end - start, total);
    }
}
