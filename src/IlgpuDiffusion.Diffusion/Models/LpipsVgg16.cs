using System.Globalization;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.IO;
using IlgpuDiffusion.Tensors.Nn;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>
/// The reference's LPIPS v0.1 with VGG16: inputs in [−1, 1] are shifted and scaled per channel
/// (<c>scaling_layer</c>; a one-channel image broadcasts to three), VGG16 features at relu1_2, relu2_2,
/// relu3_3, relu4_3, relu5_3 (<c>net.slice1</c>…<c>net.slice5</c>, children numbered as torchvision's
/// vgg16.features), and per layer a 1×1 convolution to one channel without bias (<c>linK.model.1</c>;
/// <c>linK.model.0</c> is LPIPS's dropout, the identity in evaluation, the only mode it is used in).
/// Weights come from torchvision's <c>vgg16-397923af.pth</c> and LPIPS's <c>vgg.pth</c>, or from
/// <c>lpips_vgg16.safetensors</c> in this module's own naming.
/// </summary>
public sealed class VggLpips : Lpips
{
    public const string TorchvisionFile = "vgg16-397923af.pth";
    public const string LinFile = "vgg.pth";
    public const string SafeTensorsFile = "lpips_vgg16.safetensors";

    private static readonly int[] Channels = [64, 128, 256, 512, 512];
    private readonly ScalingLayer _scaling;
    private readonly List<Layer> _slices = new();
    private readonly List<Layer> _lins = new();

    /// <summary>The network with PyTorch's default initialisation (weights are loaded over it).</summary>
    public VggLpips(Device device, Generator? init = null) : base(device)
    {
        _scaling = AddModule("scaling_layer", new ScalingLayer(device));
        var net = AddModule("net", new Container(device));
        // torchvision's vgg16 "D" configuration; 0 marks a 2×2 max pool, which opens the next slice.
        int[] config = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512];
        var slice = new Container(device);
        int index = 0, inChannels = 3;
        foreach (int c in config)
        {
            if (c == 0)
            {
                _slices.Add(net.Add($"slice{_slices.Count + 1}", slice));
                slice = new Container(device);
                slice.Add(index++, new MaxPool2d(device, 2, 2));
                continue;
            }
            slice.Add(index++, new Conv2d(device, inChannels, c, 3, 1, 1, init: init));
            slice.Add(index++, new ReLU(device));
            inChannels = c;
        }
        _slices.Add(net.Add($"slice{_slices.Count + 1}", slice));

        for (int k = 0; k < Channels.Length; k++)
        {
            var lin = new Container(device);
            lin.Add("model", new Sequential(device, new Identity(device), new Conv2d(device, Channels[k], 1, 1, bias: false, init: init)));
            _lins.Add(AddModule($"lin{k}", lin));
        }
        // The original also lists the lin layers through an nn.ModuleList "lins": the same tensors under a
        // second name in its state dict (not as parameters). Mirrored so checkpoints match name for name.
        var lins = AddModule("lins", new Container(device));
        foreach (var (name, weight) in _lins.SelectMany((lin, k) => lin.NamedParameters().Select(p => ($"{k}.{p.Name}", p.Tensor))))
            lins.Alias(name, weight);
        SetParametersRequireGrad(false);
        Eval();
    }

    /// <summary>Whether <paramref name="folder"/> holds either weight source.</summary>
    public static bool HasWeights(string folder) =>
        File.Exists(Path.Combine(folder, SafeTensorsFile)) ||
        (File.Exists(Path.Combine(folder, TorchvisionFile)) && File.Exists(Path.Combine(folder, LinFile)));

    /// <summary>Loads from <paramref name="folder"/>: <see cref="SafeTensorsFile"/> if present, else the two PyTorch files.</summary>
    public static VggLpips Load(Device device, string folder)
    {
        var model = new VggLpips(device);
        try
        {
            string safetensors = Path.Combine(folder, SafeTensorsFile);
            if (File.Exists(safetensors)) model.LoadStateDict(SafeTensors.Read(safetensors), strict: true, source: safetensors);
            else model.LoadPyTorch(RequireFile(folder, TorchvisionFile, "torchvision's ImageNet VGG16"),
                RequireFile(folder, LinFile, "LPIPS v0.1 VGG lin layers"));
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static string RequireFile(string folder, string file, string what)
    {
        string path = Path.Combine(folder, file);
        if (File.Exists(path)) return path;
        throw new FileNotFoundException(
            $"LPIPS (VGG16) weight file '{file}' ({what}) not found in '{folder}'. Put '{TorchvisionFile}' and '{LinFile}' " +
            $"(or '{SafeTensorsFile}') in that folder, or point --lpips-weights at the folder that holds them " +
            $"(default: {DefaultWeightsFolder}). Without them the ResNet18 perceptual loss is used instead.", path);
    }

    /// <summary>torchvision's <c>features.N.*</c> become <c>net.sliceK.N.*</c>; LPIPS's <c>linK.model.1.weight</c>
    /// keep their names.</summary>
    private void LoadPyTorch(string torchvisionPath, string linPath)
    {
        var torchvision = PthReader.Read(torchvisionPath);
        var lin = PthReader.Read(linPath);
        var state = new Dictionary<string, HostTensor>();
        foreach (var (name, _) in NamedParameters())
        {
            bool fromVgg = name.StartsWith("net.", StringComparison.Ordinal);
            string key = fromVgg ? "features." + name.Split('.', 3)[2] : name;
            string file = fromVgg ? torchvisionPath : linPath;
            state[name] = (fromVgg ? torchvision : lin).TryGetValue(key, out var value) ? value
                : throw new InvalidDataException($"{file}: no entry '{key}' (for {name}); is this the right file?");
        }
        LoadStateDict(state, strict: false, source: $"{torchvisionPath} + {linPath}");
    }

    protected override IReadOnlyList<Tensor> Features(Tensor images)
    {
        var x = _scaling.Forward(images);
        var features = new List<Tensor>();
        foreach (var slice in _slices) features.Add(x = TensorScope.Stage(() => slice.Forward(x)));
        return features;
    }

    protected override Tensor ReduceChannels(int layer, Tensor squaredDifference) => _lins[layer].Forward(squaredDifference);

    /// <summary>(x − shift) / scale with LPIPS's ImageNet constants, as buffers of shape (1, 3, 1, 1).</summary>
    private sealed class ScalingLayer : Layer
    {
        private readonly Tensor _shift, _scale;

        public ScalingLayer(Device device) : base(device)
        {
            using var unowned = TensorScope.Suspend();
            _shift = AddBuffer("shift", Tensor.FromArray([-0.030f, -0.088f, -0.188f], [1, 3, 1, 1], device));
            _scale = AddBuffer("scale", Tensor.FromArray([0.458f, 0.448f, 0.450f], [1, 3, 1, 1], device));
        }

        public override Tensor Forward(Tensor x) => (x - _shift) / _scale;
    }

    /// <summary>Children under chosen names, applied in the order added (torch's add_module on a Sequential).</summary>
    private sealed class Container(Device device) : Layer(device)
    {
        private readonly List<Layer> _layers = new();

        public T Add<T>(string name, T layer) where T : Layer
        {
            _layers.Add(AddModule(name, layer));
            return layer;
        }

        public void Add(int index, Layer layer) => Add(index.ToString(CultureInfo.InvariantCulture), layer);

        /// <summary>A state-dict entry that names an existing tensor (not a parameter of this module).</summary>
        public void Alias(string name, Tensor tensor) => AddBuffer(name, tensor);

        public override Tensor Forward(Tensor x)
        {
            foreach (var layer in _layers) x = layer.Forward(x);
            return x;
        }
    }
}
