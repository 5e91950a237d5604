namespace IlgpuDiffusion.Tensors;

// Normalisation layers as compositions of differentiable ops (autograd derives their backward).
public sealed partial class Tensor
{
    /// <summary>torch.nn.functional.group_norm over (B, C, …): statistics per sample and group of C/groups
    /// channels (biased variance), then a per-channel affine transform.</summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps = 1e-5f)
    {
        const string op = "group_norm";
        if (x.Rank < 2 || groups <= 0 || x._shape[1] % groups != 0)
            throw new ArgumentException($"{op}: {groups} groups do not divide the channels of input {ShapeString(x._shape)}");
        x.RequireDType(DType.Float32, op);
        int batch = x._shape[0], channels = x._shape[1], spatial = Layout.Product(x._shape, 2);
        foreach (var p in new[] { weight, bias })
            if (p != null && (p.Rank != 1 || p.Count != channels))
                throw new ArgumentException($"{op}: affine parameter of shape {ShapeString(p._shape)} for {channels} channels");
        var gamma = weight ?? Ones([channels], x.Device);
        var beta = bias ?? Zeros([channels], x.Device);
        var y = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
        var mean = new Tensor(x.Device, [batch * groups], DType.Float32);
        var rstd = new Tensor(x.Device, [batch * groups], DType.Float32);
        x.Backend.GroupNormForward(x.View, gamma.View, beta.View, y.View, mean.View, rstd.View, batch, channels, spatial, groups, eps);
        return Record(y, op, [x, gamma, beta], [x, gamma, mean, rstd], dy =>
        {
            var dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
            var dgamma = new Tensor(x.Device, [channels], DType.Float32);
            var dbeta = new Tensor(x.Device, [channels], DType.Float32);
            x.Backend.GroupNormBackward(x.View, gamma.View, mean.View, rstd.View, dy.View, dx.View, dgamma.View, dbeta.View,
                batch, channels, spatial, groups);
            return [dx, dgamma, dbeta];
        });
    }

    /// <summary>torch.nn.functional.batch_norm over (B, C, …). Training: batch statistics (biased variance)
    /// normalise, and the running statistics are updated in place with the unbiased variance and
    /// <paramref name="momentum"/>. Evaluation: the running statistics normalise.</summary>
    public static Tensor BatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor? weight, Tensor? bias,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        if (x.Rank < 2 || runningMean.Count != x._shape[1] || runningVar.Count != x._shape[1])
            throw new ArgumentException(
                $"batch_norm: running statistics of {runningMean.Count} channels for input {ShapeString(x._shape)}");
        int channels = x._shape[1];
        var statShape = Enumerable.Repeat(1, x.Rank).ToArray();
        statShape[1] = channels;
        Tensor normalised;
        if (training)
        {
            var dims = Enumerable.Range(0, x.Rank).Where(d => d != 1).ToArray();
            int n = x.Count / channels;
            if (n <= 1)
                throw new ArgumentException(
                    $"batch_norm: training needs more than one value per channel, got input {ShapeString(x._shape)}");
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

    /// <summary>torch.nn.functional.linear: x · Wᵀ + b over the last dimension. The bias is added in place into the
    /// product's fresh output (the product's backward rule does not read it): one activation-sized tensor and pass fewer
    /// than a separate add.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        const string op = "linear";
        var product = x.MatmulTransposed(weight);
        if (bias == null) return product;
        var y = product.Alias((int[])product._shape.Clone());
        AddBias(y, bias, dim: y.Rank - 1, op, "output features");
        int features = y._shape[^1], rows = Layout.Product(y._shape, 0, y.Rank - 1);
        return Record(y, op, [product, bias], [], g => [g, bias.RequiresGrad ? g.Reshape(rows, features).Sum(0) : null]);
    }
}
