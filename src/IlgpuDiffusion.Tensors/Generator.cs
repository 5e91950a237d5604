namespace IlgpuDiffusion.Tensors;

/// <summary>
/// Seeded source of random tensors. Counter-based (Philox): a draw of n values uses counters
/// [Offset, Offset + n) under key Seed, so the numbers depend only on (seed, position) — the same on
/// every device — and the whole state is two integers that a checkpoint can store.
/// </summary>
public sealed class Generator
{
    private (int Start, int Count, int Total)? _share;

    public Generator(ulong seed, ulong offset = 0)
    {
        Seed = seed;
        Offset = offset;
    }

    public ulong Seed { get; private set; }
    public ulong Offset { get; private set; }

    public void ManualSeed(ulong seed)
    {
        Seed = seed;
        Offset = 0;
    }

    /// <summary>Restores a state saved from <see cref="Seed"/> and <see cref="Offset"/>.</summary>
    public void SetState(ulong seed, ulong offset)
    {
        Seed = seed;
        Offset = offset;
    }

    /// <summary>
    /// Until the returned scope ends, every draw is one rank's share of a draw for a whole batch: a draw of n·<paramref name="count"/>
    /// values takes the counters a draw of n·<paramref name="total"/> values would give to items [<paramref name="start"/>,
    /// start + count), and the generator moves past the whole batch's draw. Ranks that each draw for their share of a batch
    /// thus get exactly the numbers one process drawing for the whole batch would, and end at the same position.
    /// </summary>
    public IDisposable DrawShare(int start, int count, int total)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (start < 0 || start + count > total)
            throw new ArgumentOutOfRangeException(nameof(start), $"items [{start}, {start + count}) of {total}");
        _share = (start, count, total);
        return new ShareScope(this);
    }

    /// <summary>Reserves <paramref name="count"/> counters (see <see cref="DrawShare"/>) and returns the first.</summary>
    internal ulong Advance(int count)
    {
        ulong first = Offset;
        if (_share is not { } share)
        {
            Offset += (ulong)count;
            return first;
        }
        if (count % share.Count != 0)
            throw new InvalidOperationException($"a draw of {count} values is not the same number of values for each of the "
                + $"{share.Count} items of a rank's share of the batch");
        ulong perItem = (ulong)(count / share.Count);
        Offset += perItem * (ulong)share.Total;
        return first + perItem * (ulong)share.Start;
    }


    private sealed class ShareScope(Generator generator) : IDisposable
    {
        public void Dispose() => generator._share = null;
    }

    /// <summary>Uniform integers in [0, maxExclusive) on the host, from the same stream (e.g. diffusion timesteps, shuffles).</summary>
    public int[] NextInts(int count, int maxExclusive)
    {
        ulong first = Advance(count);
        var values = new int[count];
        for (int i = 0; i < count; i++)
        {
            Backends.Philox.Generate(Seed, first + (ulong)i, out uint r0, out uint r1);
            values[i] = (int)((((ulong)r1 << 32) | r0) % (ulong)maxExclusive);
        }
        return values;
    }
}
