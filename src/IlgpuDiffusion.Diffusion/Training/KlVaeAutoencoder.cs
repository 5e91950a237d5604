using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Training;

// Mirrors VqVaeAutoencoder member for member on purpose: the two kinds differ only in what each member does.
/// <summary>The KL-VAE in the stages: the KL term; the LDM learns the encoder's mean.</summary>
public sealed class KlVaeAutoencoder(Device device, ExperimentConfig config) : IAutoencoder
{
    private readonly Vae _model = new(device, config.Dataset.ImChannels, config.Autoencoder);

    public Module Module => _model;
    public string Kind => "vae";

    public (Tensor Reconstruction, Dictionary<string, Tensor> Terms) TrainingForward(Tensor x, TrainParams p, Generator generator)
    {
        var o = _model.Forward(x, generator);
        return (o.Reconstruction, new Dictionary<string, Tensor> { ["kl"] = Vae.KlDivergence(o.EncoderOutput).Mul((float)p.KlWeight) });
    }

    /// <summary>The mean half of the encoder output.</summary>
    public Tensor EncodeLatent(Tensor x)
    {
        var output = _model.Encode(x);
        return output.Slice(1, 0, output.Size(1) / 2);
    }

    public Tensor Decode(Tensor z) => _model.Decode(z);
    public void Dispose() => _model.Dispose();
}
