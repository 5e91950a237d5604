using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// `train-classifier`: the <see cref="ImageClassifier"/> on the labelled IDX images of dataset_params.im_path (all of
/// the training split; max_images does not apply), cross-entropy, Adam; then its accuracy on the test split. The
/// weights go to the task folder as classifier.safetensors, where `evaluate --features classifier` finds them.
/// </summary>
public sealed class ClassifierTrainer(TrainingRun run)
{
    private const int BatchSize = 128;

    public double Train(int epochs, double learningRate = 1e-3)
    {
        string path = run.Config.Dataset.ImPath;
        if (!TrainingRun.HasIdxImages(path, "train-"))
            throw new InvalidDataException(
                $"train-classifier needs labelled IDX data: dataset_params.im_path '{path}' holds no train-images-idx3-ubyte[.gz]");
        var train = IdxDataset.Open(path, IdxSplit.Train, withLabels: true);
        var seed = (ulong)run.Config.Train.Seed;
        int classes = Enumerable.Range(0, train.Count).Max(train.Label) + 1;
        run.EnsureTaskFolder();
        using var classifier = new ImageClassifier(run.Device, train.ImageChannels, train.ImageSize, classes, new Generator(seed));
        using var adam = new Adam(classifier.Parameters(), (float)learningRate);
        using var loader = new DataLoader(train, BatchSize, seed);
        long total = (long)epochs * loader.BatchesPerEpoch;
        run.Log.WriteLine($"train-classifier: {train.Count} images of {classes} classes, {total} steps of {BatchSize}");
        var bar = new ProgressBar("classifier", total, output: run.Log == Console.Out ? null : run.Log);
        for (long step = 1; step <= total;)
        {
            if (!loader.TryNext(out var batch)) continue;
            using var scope = new TensorScope();
            var logits = classifier.Forward(batch.ToTensor(run.Device));
            var loss = ImageClassifier.CrossEntropy(logits, batch.Indices.Select(train.Label).ToArray());
            loss.Backward();
            adam.Step();
            adam.ZeroGrad();
            if (step % 50 == 0 || step == total)
            {
                double value = loss.Item();
                TrainingRun.CheckFinite(step, new Dictionary<string, double> { ["cross_entropy"] = value });
                bar.Report(step, new Dictionary<string, double> { ["loss"] = value });
            }
            step++;
        }
        bar.Finish();
        classifier.Eval();
        string weights = run.File(ImageClassifier.FileName);
        Checkpoint.SaveModel(classifier, weights, new Dictionary<string, string> { ["data"] = train.Name });
        var test = TrainingRun.HasIdxImages(path, "t10k-") ? IdxDataset.Open(path, IdxSplit.Test, withLabels: true) : train;
        double accuracy = Accuracy(classifier, test);
        run.Log.WriteLine($"train-classifier: accuracy {accuracy:P2} on {test.Name}; weights {weights}");
        return accuracy;
    }

    private double Accuracy(ImageClassifier classifier, IdxDataset images)
    {
        var predicted = SampleQuality.Predict(new ClassifierFeatures(classifier), images, images.Count, run.Device); // owned by the caller
        return (double)Enumerable.Range(0, images.Count).Count(i => predicted[i] == images.Label(i)) / images.Count;
    }
}
