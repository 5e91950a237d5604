using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>The conditional UNet's pieces outside the parity cases: classifier-free guidance, condition dropout,
/// the mask resize, and the conditions a data set provides (or fails to, naming the key).</summary>
public class ConditioningTests
{
    private static LdmParams TinyLdm(ConditionConfig conditions) => new()
    {
        DownChannels = [8, 16, 16], MidChannels = [16, 16], DownSample = [true, false], AttnDown = [true, true],
        TimeEmbDim = 16, NormChannels = 4, NumHeads = 2, ConvOutChannels = 8, NumDownLayers = 1, NumMidLayers = 1,
        NumUpLayers = 1, ConditionConfig = conditions,
    };

    private static ConditionConfig ClassConditions(double dropProbability = 0.1, int numClasses = 4) => new()
    {
        ConditionTypes = ["class"], ClassConditionConfig = new() { NumClasses = numClasses, CondDropProb = dropProbability },
    };

    private static float MaxDifference(Tensor a, Tensor b) => a.ToArray().Zip(b.ToArray(), (x, y) => MathF.Abs(x - y)).Max();

    [Fact]
    public void Guidance_scale_one_is_the_conditional_prediction_and_zero_the_unconditional_one()
    {
        var generator = new Generator(5);
        using var unet = new UNet(Device.Cpu, 3, TinyLdm(ClassConditions()));
        using var noGrad = Autograd.NoGrad();
        var x = Tensor.Randn([3, 3, 8, 8], generator);
        int[] t = [10, 500, 999];
        var (conditional, unconditional) = ConditionBatches.ForClasses(unet.Conditions!, [0, 2, 3], Device.Cpu);
        var withClass = unet.Forward(x, t, conditional);
        var withoutClass = unet.Forward(x, t, unconditional);
        Assert.True(MaxDifference(withClass, withoutClass) > 1e-3f, "the class must change the prediction for this test to mean anything");

        Assert.Equal(withClass.ToArray(), ClassifierFreeGuidance.PredictNoise(unet, x, t, conditional, unconditional, 1).ToArray());
        // the guided call runs both halves as one batch of 6, so allow for the round-off of other GEMM shapes
        Assert.True(MaxDifference(withoutClass, ClassifierFreeGuidance.PredictNoise(unet, x, t, conditional, unconditional, 0)) < 1e-5f);
        var guided = ClassifierFreeGuidance.PredictNoise(unet, x, t, conditional, unconditional, 3);
        var expected = withoutClass + (withClass - withoutClass) * 3f;
        Assert.True(MaxDifference(expected, guided) < 1e-4f);
    }

    [Fact]
    public void The_condition_dropout_rate_of_a_long_run_matches_its_probability()
    {
        var generator = new Generator(17);
        const int samples = 200_000;
        foreach (double p in new[] { 0.1, 0.5 })
        {
            double dropped = ConditionBatches.Keep(samples, p, generator).Count(keep => !keep) / (double)samples;
            // five standard deviations of a binomial share
            Assert.InRange(dropped, p - 5 * Math.Sqrt(p * (1 - p) / samples), p + 5 * Math.Sqrt(p * (1 - p) / samples));
        }
        Assert.All(ConditionBatches.Keep(1000, 0, generator), Assert.True);
        Assert.All(ConditionBatches.Keep(1000, 1, generator), Assert.False);
    }

    [Fact]
    public void A_dropped_class_is_an_all_zero_row_and_the_draws_repeat_from_a_restored_generator()
    {
        using var folder = new TempFolder();
        var data = ClassFolders(folder, ("a", 3), ("b", 3));
        var config = ClassConditions(0.5, numClasses: 2);
        var conditions = DatasetConditions.Open(config, Dataset(folder), data);
        var batches = new ConditionBatches(config, conditions, Device.Cpu);
        var generator = new Generator(9, offset: 40);
        int[] items = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5];
        var first = batches.ForItems(items, generator).Class!.ToArray();
        generator.SetState(9, 40);
        Assert.Equal(first, batches.ForItems(items, generator).Class!.ToArray());
        for (int b = 0; b < items.Length; b++)
        {
            var row = first.AsSpan(b * 2, 2).ToArray();
            Assert.True(row.Sum() == 0 || row[conditions.Labels![items[b]]] == 1, $"row {b}: [{string.Join(", ", row)}]");
        }
        Assert.Contains(Enumerable.Range(0, items.Length), b => first[b * 2] + first[b * 2 + 1] == 0);
        Assert.Equal(items.Length, batches.ForItems(items, dropout: null).Class!.ToArray().Sum());
    }

    [Fact]
    public void Nearest_resize_reads_the_source_pixel_torch_picks()
    {
        // torch: out index i reads floor(i · in / out): 5 → 3 reads 0, 1, 3; 4 → 2 reads 0, 2
        var x = Tensor.FromArray(Enumerable.Range(0, 20).Select(v => (float)v).ToArray(), [1, 1, 4, 5]);
        Assert.Equal([0f, 1, 3, 10, 11, 13], UNet.NearestResize(x, 2, 3).ToArray());
    }

    [Fact]
    public void Class_subfolders_give_labels_and_the_class_list_in_name_order()
    {
        using var folder = new TempFolder();
        var data = ClassFolders(folder, ("shoe", 2), ("bag", 3));
        var conditions = DatasetConditions.Open(ClassConditions(0, numClasses: 2), Dataset(folder), data);
        Assert.Equal(["bag", "shoe"], conditions.ClassNames!);
        Assert.Equal([0, 0, 0, 1, 1], conditions.Labels!);
        Assert.Equal(1, ConditionBatches.ResolveClass("Shoe", conditions.ClassNames!));
        Assert.Equal(0, ConditionBatches.ResolveClass("0", conditions.ClassNames!));
        Assert.Throws<ArgumentException>(() => ConditionBatches.ResolveClass("hat", conditions.ClassNames!));
    }

    [Fact]
    public void Text_contexts_and_masks_are_matched_by_file_name()
    {
        using var folder = new TempFolder();
        var data = ClassFolders(folder, ("x", 2));
        string masks = folder.File("masks");
        Directory.CreateDirectory(masks);
        for (int i = 0; i < 2; i++)
        {
            using var mask = new Image<L8>(4, 4);
            mask[1, 2] = new L8((byte)(i + 1)); // (x 1, y 2) is class i + 1 → channel i
            mask.SaveAsPng(Path.Combine(masks, $"{i}.png"));
        }
        string contexts = folder.File("contexts.safetensors");
        Tensors.IO.SafeTensors.Write(contexts, [
            new("0.png", Tensors.IO.HostTensor.FromFloats([2, 3], [1, 1, 1, 1, 1, 1])),
            new("1.png", Tensors.IO.HostTensor.FromFloats([2, 3], [2, 2, 2, 2, 2, 2])),
            new(DatasetConditions.EmptyPromptKey, Tensors.IO.HostTensor.FromFloats([2, 3], new float[6])),
        ]);
        var config = new ConditionConfig
        {
            ConditionTypes = ["text", "image"],
            TextConditionConfig = new() { TextEmbedModel = "clip", TrainTextEmbedModel = false, TextEmbedDim = 3, CondDropProb = 0 },
            ImageConditionConfig = new()
            {
                ImageConditionInputChannels = 2, ImageConditionOutputChannels = 1, ImageConditionH = 4, ImageConditionW = 4,
                CondDropProb = 0,
            },
        };
        var conditions = DatasetConditions.Open(config, Dataset(folder) with { MaskPath = masks, TextContextPath = contexts }, data);
        var batch = new ConditionBatches(config, conditions, Device.Cpu).ForItems([1, 0], dropout: null);
        Assert.Equal([2, 2, 3], batch.Text!.Shape.ToArray());
        Assert.Equal(2f, batch.Text.ToArray()[0]);
        var image = batch.Image!.ToArray(); // (2, 2, 4, 4): item 1 has channel 1 set at (y 2, x 1), item 0 channel 0
        Assert.Equal(2f, image.Sum());
        Assert.Equal(1f, image[16 + 2 * 4 + 1]);
        Assert.Equal(1f, image[32 + 2 * 4 + 1]);
    }

    [SkippableTheory]
    [InlineData("larger")]
    [InlineData("indexed")]
    [InlineData("fifo")]
    [InlineData("value")]
    public async Task A_hostile_mask_is_refused_before_training_naming_the_file(string kind)
    {
        using var folder = new TempFolder();
        var data = ClassFolders(folder, ("x", 2));
        string masks = folder.File("masks"), hostile = Path.Combine(masks, "1.png");
        Directory.CreateDirectory(masks);
        using (var good = new Image<L8>(4, 4)) good.SaveAsPng(Path.Combine(masks, "0.png"));
        switch (kind)
        {
            case "larger": // a decompression bomb in small: only its header may be read
                using (var large = new Image<L8>(4000, 4000)) large.SaveAsPng(hostile);
                break;
            case "indexed":
                File.WriteAllBytes(hostile, IndexedPng.Bytes(4, 4, 8, [0, 0, 0, 9, 9, 9], (x, y) => x % 2));
                break;
            case "value": // 3 marks a third channel of the two
                using (var beyond = new Image<L8>(4, 4))
                {
                    beyond[1, 2] = new L8(3);
                    beyond.SaveAsPng(hostile);
                }
                break;
            default:
                NamedPipe.Make(hostile);
                break;
        }
        var config = new ConditionConfig
        {
            ConditionTypes = ["image"],
            ImageConditionConfig = new()
            {
                ImageConditionInputChannels = 2, ImageConditionOutputChannels = 1, ImageConditionH = 4, ImageConditionW = 4,
                CondDropProb = 0,
            },
        };
        var open = Task.Run(() => DatasetConditions.Open(config, Dataset(folder) with { MaskPath = masks }, data));
        Assert.True(await Task.WhenAny(open, Task.Delay(TimeSpan.FromSeconds(30))) == open, "the mask check hung");
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => open);
        Assert.StartsWith($"{hostile}: unusable mask (dataset_params.mask_path): ", error.Message);
        Assert.Contains(kind switch
        {
            "larger" => "4000×4000",
            "indexed" => "indexed-colour",
            "value" => "pixel value 3 at (x 1, y 2) is beyond "
                + "ldm_params.condition_config.image_condition_config.image_condition_input_channels 2",
            _ => "not a regular file",
        }, error.Message);
    }

    [Fact]
    public void A_condition_the_data_does_not_provide_fails_naming_the_key()
    {
        using var folder = new TempFolder();
        var flat = folder.File("flat");
        Directory.CreateDirectory(flat);
        WritePng(Path.Combine(flat, "0.png"));
        var images = new ImageFolderDataset(flat, 1, 4, skipUnreadable: false);
        var noClass = Assert.Throws<InvalidDataException>(() => DatasetConditions.Open(ClassConditions(), Dataset(folder), images));
        Assert.Contains("ldm_params.condition_config.condition_types lists 'class'", noClass.Message);

        var text = new ConditionConfig
        {
            ConditionTypes = ["text"],
            TextConditionConfig = new() { TextEmbedModel = "clip", TrainTextEmbedModel = false, TextEmbedDim = 3, CondDropProb = 0.1 },
        };
        var noText = Assert.Throws<InvalidDataException>(() => DatasetConditions.Open(text, Dataset(folder), images));
        Assert.Contains("dataset_params.text_context_path", noText.Message);

        var tooFew = Assert.Throws<ConfigException>(() => DatasetConditions.Open(ClassConditions(),
            Dataset(folder), ClassFolders(folder, ("a", 1), ("b", 1))));
        Assert.Equal("ldm_params.condition_config.class_condition_config.num_classes", tooFew.Key);
    }

    private static DatasetParams Dataset(TempFolder folder) => new() { ImChannels = 1, ImSize = 4, Name = "test", ImPath = folder.Path };

    private static void WritePng(string path)
    {
        using var image = new Image<L8>(4, 4);
        image.SaveAsPng(path);
    }

    /// <summary>An image folder of 4×4 grey images in class subfolders, numbered across classes (0.png, 1.png, …).</summary>
    private static ImageFolderDataset ClassFolders(TempFolder folder, params (string Name, int Count)[] classes)
    {
        string root = folder.File($"classes{Directory.GetDirectories(folder.Path).Length}");
        int next = 0;
        foreach (var (name, count) in classes)
        {
            Directory.CreateDirectory(Path.Combine(root, name));
            for (int i = 0; i < count; i++) WritePng(Path.Combine(root, name, $"{next++}.png"));
        }
        return new ImageFolderDataset(root, 1, 4, skipUnreadable: false);
    }
}
