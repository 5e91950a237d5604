using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>The VQ-VAE or the KL-VAE behind one face for the stages: a training forward pass with its
/// regularisation losses, the latent used by the LDM, decoding, and the checkpoint names.</summary>
public sealed class Autoencoder : IDisposable
{
    private readonly VqVae? _vq;
    private readonly Vae? _vae;

    public Autoencoder(Device device, ExperimentConfig config, bool vae)
    {
        if (vae) _vae = new Vae(device, config.Dataset.ImChannels, config.Autoencoder);
        else _vq = new VqVae(device, config.Dataset.ImChannels, config.Autoencoder);
    }

    public Module Module => (Module?)_vq ?? _vae!;
    public bool IsVae => _vae != null;
    public string Kind => IsVae ? "vae" : "vqvae";
    public string CheckpointStem => $"{Kind}_autoencoder_ckpt";
    public string DiscriminatorStem => $"{Kind}_discriminator_ckpt";

    /// <summary>Reconstruction plus the weighted regularisation terms of the original's generator loss (codebook and
    /// commitment for the VQ-VAE, KL for the VAE), unweighted by acc_steps.</summary>
    public (Tensor Reconstruction, Dictionary<string, Tensor> Terms) TrainingForward(Tensor x, TrainParams p, Generator generator)
    {
        if (_vq != null)
        {
            var o = _vq.Forward(x);
            return (o.Reconstruction, new Dictionary<string, Tensor>
            {
                ["codebook"] = o.CodebookLoss.Mul((float)p.CodebookWeight),
                ["commitment"] = o.CommitmentLoss.Mul((float)p.CommitmentBeta),
            });
        }
        var v = _vae!.Forward(x, generator);
        return (v.Reconstruction, new Dictionary<string, Tensor> { ["kl"] = Vae.KlDivergence(v.EncoderOutput).Mul((float)p.KlWeight) });
    }

    /// <summary>The latent the LDM learns: the quantised latent, or the VAE's mean (deterministic, so it can be cached).</summary>
    public Tensor EncodeLatent(Tensor x)
    {
        if (_vq != null) return _vq.Encode(x).Quantized;
        var output = _vae!.Encode(x);
        return output.Slice(1, 0, output.Size(1) / 2);
    }

    public Tensor Decode(Tensor z) => _vq != null ? _vq.Decode(z) : _vae!.Decode(z);

    /// <summary>Codebook indices of a batch (VQ-VAE only), for codebook-usage statistics.</summary>
    public Tensor? Indices(Tensor x) => _vq?.Encode(x).Indices;

    public void Dispose() => Module.Dispose();
}
