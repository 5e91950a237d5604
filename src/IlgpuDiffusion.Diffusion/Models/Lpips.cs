using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>
/// A learned-perceptual-image-patch-similarity distance: feature maps of both images from a frozen
/// network, each unit-normalised over channels (LPIPS's normalize_tensor, x / (‖x‖ + 1e-10)), squared
/// difference, reduced to one channel per layer (<see cref="ReduceChannels"/>), spatial mean, summed over
/// layers. Two feature networks: <see cref="VggLpips"/> (the reference LPIPS v0.1) and
/// <see cref="ResNet18Lpips"/> (an ImageNet ResNet18 stand-in when the VGG weights are absent).
/// Nothing here is trained: parameters do not require gradients (gradients still flow to the images).
/// </summary>
public abstract class Lpips : Module
{
    protected Lpips(Device device) : base(device) { }

    /// <summary>Where <see cref="Create"/> looks for the VGG weight files when no folder is given
    /// (the CLI's <c>--lpips-weights</c> overrides it): ~/.cache/ildm/lpips.</summary>
    public static string DefaultWeightsFolder =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ildm", "lpips");

    /// <summary>The reference LPIPS (VGG16) from <paramref name="weightsFolder"/>, which must hold its weights when
    /// given (a folder the user named that lacks them is a mistake, not a wish for the other network); without one,
    /// from <see cref="DefaultWeightsFolder"/> when its weights are there, otherwise the ResNet18 variant.</summary>
    public static Lpips Create(Device device, string? weightsFolder = null)
    {
        if (weightsFolder != null && !VggLpips.HasWeights(weightsFolder))
            throw new FileNotFoundException($"--lpips-weights {weightsFolder}: "
                + (Directory.Exists(weightsFolder) ? "the folder holds no LPIPS (VGG16) weights" : "no such folder")
                + $"; put {VggLpips.TorchvisionFile} and {VggLpips.LinFile} (or {VggLpips.SafeTensorsFile}) there, or leave the "
                + $"option out (then {DefaultWeightsFolder} is used when it has them, else the ResNet18 perceptual loss)", weightsFolder);
        string folder = weightsFolder ?? DefaultWeightsFolder;
        return VggLpips.HasWeights(folder) ? VggLpips.Load(device, folder) : new ResNet18Lpips(device);
    }

    /// <summary>Feature maps, one per compared layer, of images in [−1, 1] with 1 or 3 channels.</summary>
    protected abstract IReadOnlyList<Tensor> Features(Tensor images);

    /// <summary>(B, C, h, w) squared difference of unit-normalised features of layer <paramref name="layer"/> → (B, 1, h, w).</summary>
    protected abstract Tensor ReduceChannels(int layer, Tensor squaredDifference);

    /// <summary>The distance of each image pair, shape (B, 1, 1, 1).</summary>
    public Tensor Forward(Tensor a, Tensor b)
    {
        var featuresA = Features(a);
        var featuresB = Features(b);
        Tensor? total = null;
        for (int k = 0; k < featuresA.Count; k++)
        {
            int layerIndex = k;
            var layer = TensorScope.Stage(() =>
            {
                var difference = (UnitNormalise(featuresA[layerIndex]) - UnitNormalise(featuresB[layerIndex])).Square();
                return ReduceChannels(layerIndex, difference).Mean([2, 3], keepDim: true);
            });
            total = total == null ? layer : total + layer;
        }
        return total ?? throw new InvalidOperationException($"{GetType().Name} produced no feature layers");
    }

    private static Tensor UnitNormalise(Tensor x) => x / (x.Square().Sum(1, keepDim: true).Sqrt() + 1e-10f);

    /// <summary>Lets gradients reach the parameters (off by default; the parity checks compare them).</summary>
    public void SetParametersRequireGrad(bool on)
    {
        foreach (var p in Parameters()) p.RequiresGrad = on;
    }
}
