namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>Philox4x32-10 (Salmon et al., 2011), a counter-based generator: element i of a draw is a
/// pure function of (seed, counter), so every executor produces the same numbers without state.
/// Plain integer arithmetic only, so the same code runs inside ILGPU kernels.</summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>First two 32-bit words of Philox4x32-10 at counter (c, 0, 0, 0) under key (seed).</summary>
    public static void Generate(ulong seed, ulong counter, out uint r0, out uint r1)
    {
        uint c0 = (uint)counter, c1 = (uint)(counter >> 32), c2 = 0, c3 = 0;
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0;
            ulong p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 += W0; k1 += W1;
        }
        r0 = c0;
        r1 = c1;
    }

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public static float Uniform(ulong seed, ulong counter)
    {
        Generate(seed, counter, out uint r0, out _);
        return Top24Bits(r0) * (1f / 16777216f);
    }

    /// <summary>The top 24 bits of a word as an int. Converted to float through int, exactly (below 2^24): ILGPU
    /// lowers uint → float through double, which devices without float64 (llvmpipe, Intel Arc) cannot compile.</summary>
    private static int Top24Bits(uint word) => (int)(word >> 8);

    /// <summary>Standard normal by Box–Muller from the two words at this counter.</summary>
    public static float Normal(ulong seed, ulong counter)
    {
        Generate(seed, counter, out uint r0, out uint r1);
        float u1 = (Top24Bits(r0) + 1) * (1f / 16777216f); // (0, 1]: log is finite
        float u2 = Top24Bits(r1) * (1f / 16777216f);
        return MathF.Sqrt(-2f * MathF.Log(u1)) * MathF.Cos(2f * MathF.PI * u2);
    }
}
