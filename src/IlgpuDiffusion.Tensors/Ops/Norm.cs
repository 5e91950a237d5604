namespace IlgpuDiffusion.Tensors;

// Normalisation layers as compositions of differentiable ops (autograd derives their backward).
public sealed partial class Tensor
{
    /// <summary>torch.nn.functional.group_norm over (B, C, …): statistics per sample and group of C/groups
    /// channels (biased variance), then a per-channel affine transform.</summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps = 1e-5f)
    {
        if (x.Rank < 2 || x._shape[1] % groups != 0)
            throw new ArgumentException($"group_norm: {groups} groups do not divide the channels of input {ShapeString(x._shape)}");
        int batch = x._shape[0], channels = x._shape[1];
        var grouped = x.Reshape(batch, groups, -1);
        var centred = grouped - grouped.Mean(2, keepDim: true);
        var variance = centred.Square().Mean(2, keepDim: true);
        var normalised = (centred / (variance + eps).Sqrt()).Reshape(x._shape);
        return Affine(normalised, weight, bias, channels);
    }

    /// <summary>torch.nn.functional.batch_norm over (B, C, …). Training: batch statistics (biased variance)
    /// normalise, and the running statistics are updated in place with the unbiased variance and
    /// <paramref name="momentum"/>. Evaluation: the running statistics normalise.</summary>
    public static Tensor BatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor? weight, Tensor? bias,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        if (x.Rank < 2 || runningMean.Count != x._shape[1] || runningVar.Count != x._shape[1])
            throw new ArgumentException($"batch_norm: running statistics of {runningMean.Count} channels for input {ShapeString(x._shape)}");
        int channels = x._shape[1];
        var statShape = Enumerable.Repeat(1, x.Rank).ToArray();
        statShape[1] = channels;
        Tensor normalised;
        if (training)
        {
            var dims = Enumerable.Range(0, x.Rank).Where(d => d != 1).ToArray();
            int n = x.Count / channels;
            if (n <= 1) throw new ArgumentException($"batch_norm: training needs more than one value per channel, got input {ShapeString(x._shape)}");
            var mean = x.Mean(dims, keepDim: true);
            var centred = x - mean;
            var variance = centred.Square().Mean(dims, keepDim: true);
            normalised = centred / (variance + eps).Sqrt();
            using (Autograd.NoGrad())
            {
                runningMean.CopyFrom(runningMean * (1f - momentum) + mean.Reshape(channels) * momentum);
                runningVar.CopyFrom(runningVar * (1f - momentum) + variance.Reshape(channels) * (momentum * n / (n - 1f)));
            }
        }
        else normalised = (x - runningMean.Reshape(statShape)) / (runningVar.Reshape(statShape) + eps).Sqrt();
        return Affine(normalised, weight, bias, channels);
    }

    private static Tensor Affine(Tensor normalised, Tensor? weight, Tensor? bias, int channels)
    {
        var shape = Enumerable.Repeat(1, normalised.Rank).ToArray();
        shape[1] = channels;
        var y = weight == null ? normalised : normalised * weight.Reshape(shape);
        return bias == null ? y : y + bias.Reshape(shape);
    }

    /// <summary>torch.nn.functional.linear: x · Wᵀ + b over the last dimension.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        var y = x.MatmulTransposed(weight);
        return bias == null ? y : y + bias;
    }
}
