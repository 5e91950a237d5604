using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>The VQ-VAE in the stages: codebook and commitment terms; the LDM learns the quantised latent.</summary>
public sealed class VqVaeAutoencoder(Device device, ExperimentConfig config) : ICodebookAutoencoder
{
    private readonly VqVae _model = new(device, config.Dataset.ImChannels, config.Autoencoder);

    public Module Module => _model;
    public string Kind => "vqvae";

    public (Tensor Reconstruction, Dictionary<string, Tensor> Terms) TrainingForward(Tensor x, TrainParams p, Generator generator)
    {
        var o = _model.Forward(x);
        return (o.Reconstruction, new Dictionary<string, Tensor>
        {
            ["codebook"] = o.CodebookLoss.Mul((float)p.CodebookWeight),
            ["commitment"] = o.CommitmentLoss.Mul((float)p.CommitmentBeta),
        });
    }

    public Tensor EncodeLatent(Tensor x) => _model.Encode(x).Quantized;
    public Tensor Decode(Tensor z) => _model.Decode(z);
    public Tensor CodebookIndices(Tensor x) => _model.Encode(x).Indices;
    public void Dispose() => _model.Dispose();
}
