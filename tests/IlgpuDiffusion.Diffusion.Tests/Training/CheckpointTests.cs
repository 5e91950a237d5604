using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.IO;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

public class CheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ildm-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static Sequential SmallModel(int seed) =>
        new(Device.Cpu, new Conv2d(Device.Cpu, 2, 4, 3, padding: 1, init: new Generator((ulong)seed)), new SiLU(Device.Cpu),
            new GroupNorm(Device.Cpu, 2, 4), new BatchNorm2d(Device.Cpu, 4));

    private static float[] Output(Module model, Tensor x)
    {
        using var scope = new TensorScope();
        using var noGrad = Autograd.NoGrad();
        model.Eval();
        return ((Layer)model).Forward(x).ToArray();
    }

    [Fact]
    public void A_saved_model_loads_back_with_identical_outputs()
    {
        var x = Tensor.Randn([2, 2, 5, 5], new Generator(3));
        var a = SmallModel(1);
        var b = SmallModel(2);
        Assert.NotEqual(Output(a, x), Output(b, x));
        string path = Path.Combine(_folder, "model.safetensors");
        Checkpoint.SaveModel(a, path);
        Checkpoint.LoadModel(b, path);
        Assert.Equal(Output(a, x), Output(b, x));
        Assert.Equal(a.StateDict().Select(e => e.Name), Checkpoint.ReadStateDict(path).Keys);
    }

    [Fact]
    public void A_truncated_checkpoint_is_a_clear_error_naming_the_file()
    {
        string path = Path.Combine(_folder, "model.safetensors");
        Checkpoint.SaveModel(SmallModel(1), path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.ThrowsAny<Exception>(() => Checkpoint.LoadModel(SmallModel(2), path));
        Assert.True(e is InvalidDataException, e.ToString());
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_missing_checkpoint_names_the_path()
    {
        string path = Path.Combine(_folder, "nothing.safetensors");
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.LoadModel(SmallModel(1), path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_checkpoint_of_another_architecture_names_the_entry()
    {
        string path = Path.Combine(_folder, "other.safetensors");
        Checkpoint.SaveModel(new Sequential(Device.Cpu, new Conv2d(Device.Cpu, 2, 8, 3)), path);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(SmallModel(1), path));
        Assert.Contains(path, e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    [InlineData(3e9f, "beyond")]
    public void Weights_that_are_not_finite_or_absurdly_large_are_refused_naming_the_tensor(float bad, string expected)
    {
        string path = Path.Combine(_folder, "damaged.safetensors");
        var state = Checkpoint.ReadStateDict(SaveSmallModel(path)).ToDictionary();
        var weight = state["0.weight"];
        var values = (float[])weight.Floats!.Clone();
        values[5] = bad;
        state["0.weight"] = HostTensor.FromFloats(weight.Shape, values);
        SafeTensors.Write(path, state);

        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadModel(SmallModel(2), path));

        Assert.Contains(path, e.Message);
        Assert.Contains("'0.weight' element 5", e.Message);
        Assert.Contains(expected, e.Message);
    }

    private static string SaveSmallModel(string path)
    {
        Checkpoint.SaveModel(SmallModel(1), path);
        return path;
    }

    [Theory]
    [InlineData(".exp_avg", "[1, 2, 3]")]
    [InlineData(".step", "not one count")]
    public void Training_state_of_another_shape_is_refused_naming_the_file_and_key(string entry, string expected)
    {
        var model = SmallModel(1);
        var adam = new Adam(model.Parameters(), 1e-2f);
        using (new TensorScope())
        {
            ((Layer)model).Forward(Tensor.Randn([2, 2, 5, 5], new Generator(9))).Square().Mean().Backward();
            adam.Step();
        }
        string path = Path.Combine(_folder, "state.safetensors");
        TrainingState.Save(path, new Dictionary<string, (Module, Adam)> { ["generator"] = (model, adam) }, new(1, 0, 7, 0, "loader"));
        // the first parameter's moment written for a layer of another width, or its step count as no count at all
        var tensors = SafeTensors.Read(path).ToDictionary();
        string key = tensors.Keys.First(k => k.EndsWith(entry, StringComparison.Ordinal));
        tensors[key] = entry == ".step" ? HostTensor.FromInts([0], []) : HostTensor.FromFloats([1, 2, 3], new float[6]);
        SafeTensors.Write(path, tensors, SafeTensors.ReadMetadata(path));

        var other = SmallModel(1);
        var error = Assert.Throws<InvalidDataException>(() => TrainingState.Load(path,
            new Dictionary<string, (Module, Adam)> { ["generator"] = (other, new Adam(other.Parameters(), 1e-2f)) }));

        Assert.Contains(path, error.Message);
        Assert.Contains($"'{key}' is", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Training_state_restores_optimiser_moments_and_progress()
    {
        var model = SmallModel(1);
        var adam = new Adam(model.Parameters(), 1e-2f, 0.5f, 0.999f);
        void Step()
        {
            using var scope = new TensorScope();
            adam.ZeroGrad();
            ((Layer)model).Forward(Tensor.Randn([2, 2, 5, 5], new Generator(9))).Square().Mean().Backward();
            adam.Step();
        }
        Step();
        Step();
        string path = Path.Combine(_folder, "state.safetensors");
        var progress = new TrainingProgress(2, 1, 7, 1234, "loader");
        TrainingState.Save(path, new Dictionary<string, (Module, Adam)> { ["generator"] = (model, adam) }, progress);

        var restoredModel = SmallModel(5);
        string weights = Path.Combine(_folder, "w.safetensors");
        Checkpoint.SaveModel(model, weights);
        Checkpoint.LoadModel(restoredModel, weights);
        var restoredAdam = new Adam(restoredModel.Parameters(), 1e-2f, 0.5f, 0.999f);
        var loaded = TrainingState.Load(path, new Dictionary<string, (Module, Adam)> { ["generator"] = (restoredModel, restoredAdam) });
        Assert.Equal(progress, loaded);

        Step();
        using (var scope = new TensorScope())
        {
            restoredAdam.ZeroGrad();
            ((Layer)restoredModel).Forward(Tensor.Randn([2, 2, 5, 5], new Generator(9))).Square().Mean().Backward();
            restoredAdam.Step();
        }
        foreach (var ((name, p), (_, q)) in model.NamedParameters().Zip(restoredModel.NamedParameters()))
            Assert.True(p.ToArray().SequenceEqual(q.ToArray()), $"{name} differs after the resumed step");
    }
}
