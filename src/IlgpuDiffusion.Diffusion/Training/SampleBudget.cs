using IlgpuDiffusion.Diffusion.Config;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>Refuses, before any work, sample counts and batch sizes that cannot be made: more samples than the per-sample
/// random streams allow, or a batch whose decoded images would not fit in this machine's memory (with advice).</summary>
internal static class SampleBudget
{
    /// <summary>Sample i draws from its own 2^40 counters of the seed's 64-bit Philox offset, so at most 2^24 samples.</summary>
    public const int MaxCount = 1 << 24;

    // the decoder keeps about this many activations of its widest layer alive at full resolution
    private const int LiveActivations = 3;

    /// <param name="count">samples to make</param>
    /// <param name="countOption">what sets the count, named in the error</param>
    /// <param name="batchSize">samples denoised and decoded at once</param>
    /// <param name="batchOption">what sets the batch size, named in the advice</param>
    public static void Check(ExperimentConfig config, long count, string countOption, long batchSize, string batchOption)
    {
        if (count > MaxCount)
            throw new ArgumentException($"{countOption} = {count}: more samples than the {MaxCount} this sampler can number "
                + "(each sample has its own random stream); make them in several runs with different --seed values");
        long pixels = (long)config.Dataset.ImSize * config.Dataset.ImSize;
        long widest = config.Autoencoder.DownChannels.Concat(config.Autoencoder.MidChannels).Max();
        double bytes = (double)batchSize * pixels * sizeof(float) * (LiveActivations * widest + config.Dataset.ImChannels);
        double available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (bytes > available / 2)
            throw new ArgumentException($"{batchOption} = {batchSize}: decoding that many {config.Dataset.ImSize}² images at once "
                + $"needs about {bytes / (1 << 30):F1} GiB, more than half of the {available / (1 << 30):F1} GiB of memory here; "
                + "lower it (many samples: `ildm sample --count N --batch-size B`)");
    }
}
