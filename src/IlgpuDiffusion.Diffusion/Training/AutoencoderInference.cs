using System.Text.Json;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Diffusion.Imaging;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>Reconstruction quality of the autoencoder on a data set: PSNR and SSIM of images in [0, 1], how many
/// codebook entries the VQ-VAE uses and the perplexity of their use (exp of the entropy of the code frequencies: the
/// number of equally used codes that would give the same entropy), and the FD-ResNet18 / KID of the first
/// reconstructions against the same images — the floor that no sampler can beat with this decoder.</summary>
public sealed record AutoencoderEvaluation(string Dataset, int Images, double Psnr, double Ssim, int? CodesUsed, int CodebookSize,
    double? CodebookPerplexity, SampleQualityReport? ReconstructionQuality);

/// <summary>
/// `infer-autoencoder`: encodes and decodes num_samples random training images into input / encoded /
/// reconstructed grids, measures reconstruction PSNR and codebook use (on the test split of IDX data,
/// else the training images; the first dataset_params.max_images of either), and with save_latents writes every
/// training image's latent to the cache that `train-ldm` reads.
/// </summary>
/// <param name="featureCount">Reconstructions compared with their images on ResNet18 features (0: none).</param>
public sealed class AutoencoderInference(TrainingRun run, bool vae, int featureCount = AutoencoderInference.DefaultFeatureCount)
{
    public const int DefaultFeatureCount = 1000;

    private const int BatchSize = 256;

    public AutoencoderEvaluation Run()
    {
        var config = run.Config;
        run.BeginRecord();
        using var model = IAutoencoder.Create(run.Device, config, vae);
        string checkpoint = CommittedCheckpoints.OfAutoencoder(run, model).Require(model.CheckpointStem, "train-autoencoder");
        Checkpoint.LoadModel(model.Module, checkpoint);
        model.Module.Eval();
        using var noGrad = Autograd.NoGrad();

        var images = run.OpenDataset();
        SaveGrids(model, images);
        var evaluation = Evaluate(model, EvaluationSet(images));
        File.WriteAllText(run.File("autoencoder_evaluation.json"),
            JsonSerializer.Serialize(evaluation, new JsonSerializerOptions { WriteIndented = true }));
        run.Log.WriteLine(
            $"infer-autoencoder: {evaluation.Dataset}: reconstruction PSNR {evaluation.Psnr:F2} dB, SSIM {evaluation.Ssim:F4} "
            + $"over {evaluation.Images} images"
            + (evaluation.CodesUsed is { } used
                ? $"; codebook usage {used} of {evaluation.CodebookSize} codes, perplexity {evaluation.CodebookPerplexity:F2}"
                : ""));
        if (evaluation.ReconstructionQuality is { } floor)
            run.Log.WriteLine($"infer-autoencoder: reconstructions vs their images (the floor for samples): {floor.Summary}");
        if (config.Train.SaveLatents) SaveLatents(model, images, checkpoint);
        return evaluation;
    }

    private IImageDataset EvaluationSet(IImageDataset training)
    {
        string path = run.Config.Dataset.ImPath;
        return TrainingRun.HasIdxImages(path, "t10k-") ? run.FirstMaxImages(IdxDataset.Open(path, IdxSplit.Test)) : training;
    }

    private void SaveGrids(IAutoencoder model, IImageDataset images)
    {
        var p = run.Config.Train;
        int n = Math.Min(p.NumSamples, images.Count);
        var generator = new Generator((ulong)p.Seed);
        var picks = generator.NextInts(n, images.Count);
        using var scope = new TensorScope();
        var x = images.Batch(picks, run.Device);
        var z = model.EncodeLatent(x);
        var reconstruction = model.Decode(z);
        int c = images.ImageChannels, s = images.ImageSize, perRow = p.NumGridRows;
        ImageGrid.Save(run.File("input_samples.png"), x.ToArray(), n, c, s, s, perRow, fromMinusOneToOne: true);
        ImageGrid.Save(run.File("reconstructed_samples.png"), reconstruction.ToArray(), n, c, s, s, perRow, fromMinusOneToOne: true);
        // latents are not images: each one is min–max scaled; 3 channels show as RGB, others by the first channel
        int zc = z.Size(1), zs = z.Size(2);
        var shown = zc == 3 ? z : z.Slice(1, 0, 1);
        ImageGrid.Save(run.File("encoded_samples.png"), MinMaxPerImage(shown.ToArray(), n),
            n, shown.Size(1), zs, zs, perRow, fromMinusOneToOne: false);
        run.Log.WriteLine($"infer-autoencoder: grids {run.File("input_samples.png")}, encoded_samples.png, reconstructed_samples.png");
    }

    private static float[] MinMaxPerImage(float[] values, int count)
    {
        int per = values.Length / count;
        for (int i = 0; i < count; i++)
        {
            var image = values.AsSpan(i * per, per);
            float min = float.MaxValue, max = float.MinValue;
            foreach (float v in image) { min = Math.Min(min, v); max = Math.Max(max, v); }
            for (int k = 0; k < per; k++) image[k] = max > min ? (image[k] - min) / (max - min) : 0.5f;
        }
        return values;
    }

    private AutoencoderEvaluation Evaluate(IAutoencoder model, IImageDataset images)
    {
        double squaredError = 0, ssim = 0;
        var codebook = model as ICodebookAutoencoder;
        var codeCounts = new long[run.Config.Autoencoder.CodebookSize];
        int kept = Math.Min(featureCount, images.Count), per = images.ValuesPerItem();
        var originals = new float[kept * per];
        var reconstructions = new float[kept * per];
        var bar = new ProgressBar("evaluate", images.Count, output: run.Log == Console.Out ? null : run.Log);
        for (int start = 0; start < images.Count; start += BatchSize)
        {
            using var scope = new TensorScope();
            int n = Math.Min(BatchSize, images.Count - start);
            var x = images.Batch(Enumerable.Range(start, n).ToArray(), run.Device);
            var reconstruction = model.Decode(model.EncodeLatent(x)).Clamp(-1f, 1f);
            squaredError += Tensor.MseLoss(reconstruction, x).Item() * x.Count;
            float[] a = x.ToArray(), b = reconstruction.ToArray();
            for (int i = 0; i < n; i++)
                ssim += Evaluation.Ssim.Compute(a.AsSpan(i * per, per), b.AsSpan(i * per, per), images.ImageChannels, images.ImageSize);
            if (start < kept)
            {
                int keep = Math.Min(kept - start, n) * per;
                a.AsSpan(0, keep).CopyTo(originals.AsSpan(start * per));
                b.AsSpan(0, keep).CopyTo(reconstructions.AsSpan(start * per));
            }
            if (codebook != null)
                foreach (int code in codebook.CodebookIndices(x).ToIntArray()) codeCounts[code]++;
            bar.Report(start + n);
        }
        bar.Finish();
        // images in [−1, 1]: the MSE of the [0, 1] images is a quarter of it
        double mse01 = squaredError / ((double)images.Count * images.ValuesPerItem()) / 4;
        return new AutoencoderEvaluation(images.Name, images.Count, 10 * Math.Log10(1 / Math.Max(mse01, 1e-12)), ssim / images.Count,
            codebook != null ? codeCounts.Count(c => c > 0) : null, run.Config.Autoencoder.CodebookSize,
            codebook != null ? Perplexity(codeCounts) : null,
            kept >= 4 ? ReconstructionQuality(images, originals, reconstructions, kept) : null);
    }

    /// <summary>exp(−Σ p log p) of the code frequencies.</summary>
    private static double Perplexity(long[] counts)
    {
        double total = counts.Sum();
        return Math.Exp(-counts.Where(c => c > 0).Sum(c => c / total * Math.Log(c / total)));
    }

    private SampleQualityReport ReconstructionQuality(IImageDataset images, float[] originals, float[] reconstructions, int count)
    {
        int c = images.ImageChannels, s = images.ImageSize;
        using var features = new ResNet18Features(run.Device);
        return SampleQuality.Compare(features, new LatentDataset($"{images.Name} (first {count})", originals, count, c, s),
            [new LatentDataset($"their reconstructions", reconstructions, count, c, s)], count, run.Device, run.Log)[0];
    }

    private void SaveLatents(IAutoencoder model, IImageDataset images, string checkpoint)
    {
        var cache = new LatentCache(run.File($"{model.Kind}_latents.safetensors"));
        float[]? latents = null;
        int[] shape = [];
        var bar = new ProgressBar("latents", images.Count, output: run.Log == Console.Out ? null : run.Log);
        for (int start = 0; start < images.Count; start += BatchSize)
        {
            using var scope = new TensorScope();
            int n = Math.Min(BatchSize, images.Count - start);
            var z = model.EncodeLatent(images.Batch(Enumerable.Range(start, n).ToArray(), run.Device));
            if (latents == null)
            {
                shape = [images.Count, z.Size(1), z.Size(2), z.Size(3)];
                latents = new float[(long)images.Count * z.Count / n];
            }
            z.ToArray().CopyTo(latents, (long)start * (z.Count / n));
            bar.Report(start + n);
        }
        bar.Finish();
        cache.Write(latents!, shape, images.Name, LatentCache.Fingerprint(checkpoint, images), run.OpenConditions(images)?.Labels);
        run.Log.WriteLine(
            $"infer-autoencoder: {images.Count} latents of shape [{string.Join(", ", shape.Skip(1))}] written to {cache.Path}");
    }
}
