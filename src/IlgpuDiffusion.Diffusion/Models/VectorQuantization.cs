using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>Result of <see cref="VectorQuantization.Quantize"/>.</summary>
public sealed record QuantizeResult(Tensor Quantized, Tensor Indices, Tensor CodebookLoss, Tensor CommitmentLoss);

/// <summary>The VQ-VAE's quantiser, composed of engine ops.</summary>
public static class VectorQuantization
{
    /// <summary>
    /// VQ-VAE quantisation of x (B, C, H, W) against codebook (K, C): each spatial vector takes its nearest
    /// codebook row (Euclidean); codebook loss mean((q − sg(x))²), commitment loss mean((sg(q) − x)²),
    /// output x + sg(q − x) (straight-through), indices (B, H, W) as int32.
    /// </summary>
    public static QuantizeResult Quantize(Tensor x, Tensor codebook)
    {
        if (x.Rank != 4 || codebook.Rank != 2 || codebook.Size(1) != x.Size(1))
            throw new ArgumentException($"vector_quantize: input {Tensor.ShapeString(x.Shape)} and codebook " +
                                        $"{Tensor.ShapeString(codebook.Shape)} do not match (codebook must be (K, C))");
        int batch = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        var flat = x.Permute(0, 2, 3, 1).Reshape(-1, c); // (N, C)
        Tensor indices;
        using (Autograd.NoGrad())
        {
            // ‖x − e‖² = ‖x‖² − 2 x·e + ‖e‖²; the ‖x‖² term does not change the argmin
            var distances = codebook.Square().Sum(1).Reshape(1, -1) - flat.MatmulTransposed(codebook).Mul(2f);
            indices = distances.ArgMin(1);
        }
        var quantized = codebook.IndexSelect(0, indices); // (N, C)
        var codebookLoss = Tensor.MseLoss(quantized, flat.Detach());
        var commitmentLoss = Tensor.MseLoss(quantized.Detach(), flat);
        var straightThrough = flat + (quantized - flat).Detach();
        var output = straightThrough.Reshape(batch, h, w, c).Permute(0, 3, 1, 2);
        return new QuantizeResult(output, indices.Reshape(batch, h, w), codebookLoss, commitmentLoss);
    }
}
