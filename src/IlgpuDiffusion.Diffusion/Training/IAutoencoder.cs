using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>The autoencoder as the stages use it: a training forward pass with its regularisation losses, the
/// latent the LDM learns, decoding, and the checkpoint names. <see cref="Create"/> picks the VQ-VAE or the KL-VAE.</summary>
public interface IAutoencoder : IDisposable
{
    /// <summary>The VQ-VAE (<paramref name="vae"/> false) or the KL-VAE of the experiment.</summary>
    static IAutoencoder Create(Device device, ExperimentConfig config, bool vae) =>
        vae ? new KlVaeAutoencoder(device, config) : new VqVaeAutoencoder(device, config);

    /// <summary>Whether the task folder holds a KL-VAE checkpoint and no VQ-VAE one: the model a run that names none
    /// means (it continues, encodes with or samples from what was trained there).</summary>
    static bool TrainedOnlyKlVae(TrainingRun run) =>
        run.FindCheckpoint(CheckpointStemOf("vae")) != null && run.FindCheckpoint(CheckpointStemOf("vqvae")) == null;

    static string CheckpointStemOf(string kind) => $"{kind}_autoencoder_ckpt";

    /// <summary>The network: its parameters, modes and checkpoints.</summary>
    Module Module { get; }

    /// <summary>"vqvae" or "vae": the prefix of the stage's file names.</summary>
    string Kind { get; }

    string CheckpointStem => CheckpointStemOf(Kind);
    string DiscriminatorStem => $"{Kind}_discriminator_ckpt";

    /// <summary>The stage's training state (optimisers, counters), saved with the checkpoints.</summary>
    string StateFile => $"{Kind}_autoencoder_state.safetensors";

    /// <summary>The reconstruction and the weighted regularisation terms by metric name (not yet divided by acc_steps).</summary>
    (Tensor Reconstruction, Dictionary<string, Tensor> Terms) TrainingForward(Tensor x, TrainParams p, Generator generator);

    /// <summary>Images (B, C, H, W) → the latent the LDM learns (B, z_channels, h, w), deterministic so that it can be cached.</summary>
    Tensor EncodeLatent(Tensor x);

    /// <summary>Latents (B, z_channels, h, w) → images.</summary>
    Tensor Decode(Tensor z);
}

/// <summary>An autoencoder with a codebook, which can say which entries a batch uses.</summary>
public interface ICodebookAutoencoder : IAutoencoder
{
    /// <summary>The codebook entries the latents of images (B, C, H, W) take, (B, h, w) as int32.</summary>
    Tensor CodebookIndices(Tensor x);
}
