using IlgpuDiffusion.Diffusion.Config;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>The two configurations the original PyTorch implementation ships (mnist and celebhq), written out here as
/// the tests' own copy: configs/mnist.json and configs/celebhq.json must equal them.</summary>
public static class ReferenceConfigs
{
    public static readonly AutoencoderParams MnistAutoencoder = new()
    {
        ZChannels = 3, CodebookSize = 20, DownChannels = [32, 64, 128], MidChannels = [128, 128],
        DownSample = [true, true], AttnDown = [false, false], NormChannels = 32, NumHeads = 16,
        NumDownLayers = 1, NumMidLayers = 1, NumUpLayers = 1,
    };

    public static readonly AutoencoderParams CelebHqAutoencoder = new()
    {
        ZChannels = 4, CodebookSize = 8192, DownChannels = [64, 128, 256, 256], MidChannels = [256, 256],
        DownSample = [true, true, true], AttnDown = [false, false, false], NormChannels = 32, NumHeads = 4,
        NumDownLayers = 2, NumMidLayers = 2, NumUpLayers = 2,
    };

    public static readonly LdmParams MnistLdm = new()
    {
        DownChannels = [128, 256, 256, 256], MidChannels = [256, 256], DownSample = [false, false, false],
        AttnDown = [true, true, true], TimeEmbDim = 256, NormChannels = 32, NumHeads = 16, ConvOutChannels = 128,
        NumDownLayers = 2, NumMidLayers = 2, NumUpLayers = 2,
    };

    /// <summary>mnist_class_cond.yaml's ldm_params: the mnist UNet with ten classes, dropped with probability 0.1.</summary>
    public static readonly LdmParams MnistClassCondLdm = MnistLdm with
    {
        ConditionConfig = new()
        {
            ConditionTypes = ["class"], ClassConditionConfig = new() { NumClasses = 10, CondDropProb = 0.1 },
        },
    };

    public static readonly LdmParams CelebHqLdm = new()
    {
        DownChannels = [256, 384, 512, 768], MidChannels = [768, 512], DownSample = [true, true, true],
        AttnDown = [true, true, true], TimeEmbDim = 512, NormChannels = 32, NumHeads = 16, ConvOutChannels = 128,
        NumDownLayers = 2, NumMidLayers = 2, NumUpLayers = 2,
    };

    public static readonly DatasetParams MnistDataset = new()
    {
        ImChannels = 1, ImSize = 28, Name = "mnist", ImPath = "data/mnist/train/images",
    };

    public static readonly DiffusionParams DefaultDiffusion = new() { NumTimesteps = 1000, BetaStart = 0.0015, BetaEnd = 0.0195 };

    public static readonly TrainParams MnistTrain = new()
    {
        Seed = 1111, LdmBatchSize = 64, AutoencoderBatchSize = 64, DiscStart = 1000, DiscWeight = 0.5,
        CodebookWeight = 1, CommitmentBeta = 0.2, PerceptualWeight = 1, KlWeight = 0.000005,
        LdmEpochs = 100, AutoencoderEpochs = 10, LdmLr = 1e-5, AutoencoderLr = 1e-4,
        AutoencoderAccSteps = 1, AutoencoderImgSaveSteps = 8, NumSamples = 25, NumGridRows = 5,
        SaveLatents = false, TaskName = "mnist",
    };
}
