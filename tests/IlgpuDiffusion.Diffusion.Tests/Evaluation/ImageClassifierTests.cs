using IlgpuDiffusion.Diffusion.Evaluation;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests.Evaluation;

public class ImageClassifierTests
{
    [Fact]
    public void Cross_entropy_is_the_mean_negative_log_softmax_of_the_labels()
    {
        using var scope = new TensorScope();
        var logits = Tensor.FromArray([1f, 2f, 3f, 1000f, 0f, -1000f], [2, 3]); // the second row would overflow exp unshifted
        double expected = (Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3)) - 3 + 0) / 2;
        Assert.Equal(expected, ImageClassifier.CrossEntropy(logits, [2, 0]).Item(), 5);
    }

    [Fact]
    public void Classifier_shape_is_read_back_from_its_weights()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("ildm-classifier-").FullName, ImageClassifier.FileName);
        using (var classifier = new ImageClassifier(Device.Cpu, 1, 12, 5, new Generator(3)))
            Checkpoint.SaveModel(classifier, path);
        using var loaded = ImageClassifier.Load(Device.Cpu, path);
        Assert.Equal((1, 12, 5), (loaded.Channels, loaded.ImageSize, loaded.Classes));
        using var scope = new TensorScope();
        Assert.Equal([2, 5], loaded.Forward(Tensor.Zeros([2, 1, 12, 12])).Shape);
        Assert.Equal([2, ImageClassifier.FeatureCount], loaded.Features(Tensor.Zeros([2, 1, 12, 12])).Shape);
    }
}
