namespace IlgpuDiffusion.Tensors;

/// <summary>
/// Seeded source of random tensors. Counter-based (Philox): a draw of n values uses counters
/// [Offset, Offset + n) under key Seed, so the numbers depend only on (seed, position) — the same on
/// every device — and the whole state is two integers that a checkpoint can store.
/// </summary>
public sealed class Generator
{
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

    /// <summary>Reserves <paramref name="count"/> counters and returns the first.</summary>
    internal ulong Advance(int count)
    {
        ulong first = Offset;
        Offset += (ulong)count;
        return first;
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
