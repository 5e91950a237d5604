using IlgpuDiffusion.Diffusion.Blocks;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;
using IlgpuDiffusion.Tensors.Parity;

namespace IlgpuDiffusion.Diffusion.Parity;

/// <summary>
/// The diffusion layer's parity cases: the vector quantisation, VQ-VAE, VAE, UNet and conditional UNet module cases,
/// the time embedding, and three-step training cases. Configs, hyper-parameters and tensor names come from the case's manifest
/// entry, so unseen cases of these kinds work too.
/// </summary>
public static class ModelHandlers
{
    // One handler per case-name prefix, as in the engine's OpHandlers: the same table shape on purpose.
    public static IReadOnlyList<IParityHandler> All { get; } =
    [
        new ParityHandler(["vq_quantize"], VectorQuantizeCase),
        new ParityHandler(["vqvae_"], VqVaeCase),
        new ParityHandler(["vae_"], VaeCase),
        new ParityHandler(["unet_", "cond_unet_"], UNetCase),
        new ParityHandler(["time_embedding"], TimeEmbeddingCase),
        new ParityHandler(["train_vqvae_"], TrainVqVaeCase),
        new ParityHandler(["train_unet_", "train_cond_unet_"], TrainUNetCase),
    ];

    private static AutoencoderParams AutoencoderConfig(ParityCase c) =>
        ConfigBinder.FromJson<AutoencoderParams>(c.Entry.GetProperty(AutoencoderParams.Section), $"parity case {c.Name}");

    private static LdmParams LdmConfig(ParityCase c) =>
        ConfigBinder.FromJson<LdmParams>(c.Entry.GetProperty(LdmParams.Section), $"parity case {c.Name}");

    /// <summary>The quantiser alone: outputs and the gradients of x and the codebook through
    /// loss = sum(quantized · probe) + codebook_loss + commitment_beta · commitment_loss.</summary>
    private static Dictionary<string, Tensor> VectorQuantizeCase(ParityCase c, Device d)
    {
        var x = c.Load("x", d, requiresGrad: true);
        var codebook = c.Load("codebook", d, requiresGrad: true);
        var q = VectorQuantization.Quantize(x, codebook);
        var loss = (q.Quantized * c.Load("probe", d)).Sum() + q.CodebookLoss + q.CommitmentLoss * c.Float("commitment_beta");
        loss.Backward();
        return new()
        {
            ["quantized"] = q.Quantized,
            ["indices"] = q.Indices,
            ["codebook_loss"] = q.CodebookLoss.Reshape(1), // the reference stores the scalar losses as [1]
            ["commitment_loss"] = q.CommitmentLoss.Reshape(1),
            ["grad.x"] = x.Grad!,
            ["grad.codebook"] = codebook.Grad!,
        };
    }

    private static Dictionary<string, Tensor> VqVaeCase(ParityCase c, Device d) =>
        RunModuleCase(c, d, new VqVae(d, c.Int("im_channels"), AutoencoderConfig(c)), (model, inputs) =>
        {
            var o = model.Forward(inputs["x"]);
            return new()
            {
                ["reconstruction"] = o.Reconstruction,
                ["quantized"] = o.Quantized,
                ["codebook_loss"] = o.CodebookLoss.Reshape(1), // the reference stores the scalar losses as [1]
                ["commitment_loss"] = o.CommitmentLoss.Reshape(1),
                ["indices"] = o.Indices,
            };
        });

    private static Dictionary<string, Tensor> VaeCase(ParityCase c, Device d) =>
        RunModuleCase(c, d, new Vae(d, c.Int("im_channels"), AutoencoderConfig(c)), (model, inputs) =>
        {
            var o = model.Forward(inputs["x"], inputs["eps"]);
            return new() { ["reconstruction"] = o.Reconstruction, ["encoder_output"] = o.EncoderOutput };
        });

    /// <summary>A UNet forward; a conditional one takes the case's <c>input.class</c> (one-hot rows),
    /// <c>input.text</c> and <c>input.image</c>, those its config lists.</summary>
    private static Dictionary<string, Tensor> UNetCase(ParityCase c, Device d) =>
        RunModuleCase(c, d, new UNet(d, c.Int("im_channels"), LdmConfig(c)), (model, inputs) =>
        {
            var conditions = new UNetConditions(inputs.GetValueOrDefault("class"), inputs.GetValueOrDefault("text"),
                inputs.GetValueOrDefault("image"));
            return new() { ["noise_pred"] = model.Forward(inputs["x"], inputs["t"], conditions) };
        });

    /// <summary>
    /// A module case through <see cref="ModuleCase.Compute"/>. A case without probes is an evaluation
    /// (eval mode, no graph). The model is disposed here; the results are handed back as detached views,
    /// which keep the memory of gradients they share with it alive.
    /// </summary>
    private static Dictionary<string, Tensor> RunModuleCase<TModel>(ParityCase c, Device device, TModel model,
        Func<TModel, IReadOnlyDictionary<string, Tensor>, Dictionary<string, Tensor>> forward) where TModel : Module
    {
        using (model)
        {
            Dictionary<string, Tensor> Compute() =>
                ModuleCase.Compute(c, device, model, inputs => forward(model, inputs)).ToDictionary(e => e.Key, e => e.Value.Detach());
            if (c.Tensors.Keys.Any(k => k.StartsWith("probe.", StringComparison.Ordinal))) return Compute();
            model.Eval();
            using (Autograd.NoGrad()) return Compute();
        }
    }

    private static Dictionary<string, Tensor> TimeEmbeddingCase(ParityCase c, Device d)
    {
        var t = c.Tensor("t");
        int dim = c.Tensor("embedding").Shape[1];
        var embedding = t.Ints is { } ints ? TimeEmbedding.Sinusoidal(ints, dim, d) : TimeEmbedding.Sinusoidal(t.Floats!, dim, d);
        return new() { ["embedding"] = embedding };
    }

    /// <summary>Generator steps of the autoencoder trainer without perceptual and adversarial terms:
    /// loss = mse(recon, x) + codebook_weight·codebook_loss + commitment_beta·commitment_loss.</summary>
    private static Dictionary<string, Tensor> TrainVqVaeCase(ParityCase c, Device d)
    {
        float codebookWeight = c.Float("codebook_weight"), commitmentBeta = c.Float("commitment_beta");
        using var model = new VqVae(d, c.Int("im_channels"), AutoencoderConfig(c));
        return Train(c, d, model, step =>
        {
            var x = c.Load($"step{step}.x", d);
            var o = model.Forward(x);
            return Tensor.MseLoss(o.Reconstruction, x) + o.CodebookLoss * codebookWeight + o.CommitmentLoss * commitmentBeta;
        }, hasStep: step => c.Has($"step{step}.x"));
    }

    /// <summary>LDM steps: x_t = sqrt(ᾱ_t)·x0 + sqrt(1−ᾱ_t)·noise, loss = mse(unet(x_t, t), noise); a class-conditional
    /// UNet gets one_hot(stepN.labels) with the rows of stepN.keep = 0 dropped.</summary>
    private static Dictionary<string, Tensor> TrainUNetCase(ParityCase c, Device d)
    {
        var alphaBars = LinearAlphaBars(c.Int("num_timesteps"),
            c.Entry.GetProperty("beta_start").GetDouble(), c.Entry.GetProperty("beta_end").GetDouble());
        var config = LdmConfig(c);
        using var model = new UNet(d, c.Int("im_channels"), config);
        int[] Ints(string name) => c.Tensor(name) is { Ints: { } ints } ? ints : c.Tensor(name).Floats!.Select(v => (int)v).ToArray();
        return Train(c, d, model, step =>
        {
            var x0 = c.Load($"step{step}.x0", d);
            var noise = c.Load($"step{step}.noise", d);
            var t = Ints($"step{step}.t");
            Tensor PerSample(Func<double, double> f) =>
                Tensor.FromArray(t.Select(ti => (float)f(alphaBars[ti])).ToArray(), [t.Length, 1, 1, 1], d);
            var xt = PerSample(Math.Sqrt) * x0 + PerSample(a => Math.Sqrt(1 - a)) * noise;
            var conditions = config.ConditionConfig?.ClassCondition is { } classes
                ? new UNetConditions(UNetConditions.OneHot(Ints($"step{step}.labels"), classes.NumClasses, d,
                    Ints($"step{step}.keep").Select(k => k != 0).ToArray()))
                : null;
            return Tensor.MseLoss(model.Forward(xt, t, conditions), noise);
        }, hasStep: step => c.Has($"step{step}.x0"));
    }

    /// <summary>From synthetic (or the case's) weights, Adam(lr, betas) steps while <paramref name="hasStep"/>;
    /// returns <c>losses</c> (each before its step) and <c>param_after.NAME</c>.</summary>
    private static Dictionary<string, Tensor> Train(ParityCase c, Device d, Module model, Func<int, Tensor> loss, Func<int, bool> hasStep)
    {
        ModuleCase.LoadWeights(c, model);
        var betas = c.Floats("betas");
        using var adam = new Adam(model.Parameters(), c.Float("lr"), betas[0], betas[1]);
        var losses = new List<float>();
        for (int step = 0; hasStep(step); step++)
        {
            using var scope = new TensorScope();
            var value = loss(step);
            losses.Add(value.Item());
            adam.ZeroGrad();
            value.Backward();
            adam.Step();
        }
        var result = new Dictionary<string, Tensor> { ["losses"] = Tensor.FromArray(losses.ToArray(), [losses.Count], d) };
        using (Autograd.NoGrad())
            foreach (var (name, p) in model.NamedParameters()) result["param_after." + name] = p.Clone();
        return result;
    }

    /// <summary>ᾱ_t of the linear schedule (betas = linspace(sqrt(β_start), sqrt(β_end), T)²), in float64.
    /// Kept private and minimal: Sampling/ owns the full schedule.</summary>
    private static double[] LinearAlphaBars(int numTimesteps, double betaStart, double betaEnd)
    {
        double from = Math.Sqrt(betaStart), to = Math.Sqrt(betaEnd), product = 1;
        var alphaBars = new double[numTimesteps];
        for (int t = 0; t < numTimesteps; t++)
        {
            double sqrtBeta = numTimesteps == 1 ? from : from + (to - from) * t / (numTimesteps - 1);
            product *= 1 - sqrtBeta * sqrtBeta;
            alphaBars[t] = product;
        }
        return alphaBars;
    }
}
