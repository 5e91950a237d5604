using System.Runtime.InteropServices;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>A 64-bit digest of tensors' values (FNV-1a over their 32-bit words, in order): ranks compare digests to
/// check that they hold bit-identical parameters without sending the parameters.</summary>
public static class ParameterDigest
{
    private const ulong OffsetBasis = 14695981039346656037, Prime = 1099511628211;

    public static ulong Of(IEnumerable<Tensor> tensors)
    {
        ulong hash = OffsetBasis;
        foreach (var tensor in tensors)
        {
            var words = tensor.DType == DType.Int32 ? tensor.ToIntArray() : MemoryMarshal.Cast<float, int>(tensor.ToArray()).ToArray();
            foreach (int word in words) hash = (hash ^ (uint)word) * Prime;
        }
        return hash;
    }
}
