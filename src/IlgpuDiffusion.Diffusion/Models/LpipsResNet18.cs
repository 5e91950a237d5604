using System.Globalization;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Diffusion.Models;

/// <summary>
/// An LPIPS-style distance on the ImageNet ResNet18 of NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18
/// 0.23.1 (a CNTK export, ONNX opset 8). <b>Not the reference's LPIPS</b>: no learned per-channel weights,
/// so each layer's squared difference is averaged over channels; use it when the VGG16 weights are absent.
/// The network is built by walking the graph's nodes in order (Conv, BatchNormalization folded into the
/// preceding convolution, Relu, Add, MaxPool), with the ONNX pads exactly as given (asymmetric, CNTK style),
/// up to the final pooling, which is not needed. Features are the outputs of the four residual stages.
/// Inputs in [−1, 1] map to the network's convention: pixel values 0–255 in BGR order minus the channel
/// means (a one-channel image is repeated to three). Frozen: its weights are buffers, not parameters.
/// </summary>
public sealed class ResNet18Lpips : Lpips
{
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    public const string PackageVersion = "0.23.1";

    /// <summary>The copy the build places next to the assemblies (see the Diffusion project file).</summary>
    public static string DefaultOnnxPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18.onnx");

    // Channel means of the package's preprocessing graph (ResNetPreprocess.onnx), in BGR order.
    private static readonly float[] MeanBgr = [103.06f, 115.90f, 123.15f];

    /// <summary>Stride-2 convolutions with pads [1, 1, 0, 0] need even sizes at every stage; images are
    /// padded at the bottom and right to a multiple of this with the mean pixel (0 after preprocessing).</summary>
    private const int SizeMultiple = 32;

    private readonly string _input;
    private readonly List<(string Output, Func<Func<string, Tensor>, Tensor> Run)> _steps = new();
    private readonly List<string> _stageOutputs = new();
    private readonly Tensor _offset;

    public ResNet18Lpips(Device device, string? onnxPath = null) : base(device)
    {
        string path = onnxPath ?? DefaultOnnxPath;
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"ResNet18 ONNX file not found at '{path}'. It ships in NuGet package {PackageId} {PackageVersion} " +
                "(tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx), which the build copies next to the executable.", path);
        var graph = OnnxReader.Read(path);
        using var unowned = TensorScope.Suspend();
        _offset = AddBuffer("input_offset", Tensor.FromArray(MeanBgr.Select(m => 127.5f - m).ToArray(), [1, 3, 1, 1], device));
        _input = graph.Inputs.FirstOrDefault(i => !graph.Initializers.ContainsKey(i.Name))?.Name
            ?? throw new InvalidDataException($"{path}: the graph has no input besides its initializers");
        Build(graph, path);
        Eval();
    }

    private void Build(OnnxGraph graph, string path)
    {
        var convs = new Dictionary<string, (OnnxNode Node, float[] Weight, float[] Bias, int[] Shape)>();
        var renamed = new Dictionary<string, string>(); // BatchNormalization output → the convolution it was folded into
        string Name(string value) => renamed.GetValueOrDefault(value, value);
        var blockOutputs = new List<string>();
        var stridedInputs = new HashSet<string>();
        var order = new List<OnnxNode>();

        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "AveragePool") break; // the global pooling: the features end before it
            switch (node.OpType)
            {
                case "Conv":
                {
                    if (node.Int("group", 1) != 1 || node.Ints("dilations", [1, 1]).Any(d => d != 1))
                        throw new InvalidDataException($"{path}: node '{node.Name}': grouped or dilated convolutions are not supported");
                    var w = Initializer(node, 1);
                    var bias = node.Inputs.Count > 2 ? (float[])Initializer(node, 2).Floats!.Clone() : new float[w.Shape[0]];
                    convs[node.Outputs[0]] = (node, (float[])w.Floats!.Clone(), bias, w.Shape);
                    if (Stride(node) > 1) stridedInputs.Add(Name(node.Inputs[0]));
                    order.Add(node);
                    break;
                }
                case "BatchNormalization":
                {
                    // y = scale·(conv − mean)/sqrt(var + eps) + bias: fold into the convolution's weight and bias
                    if (node.Inputs.Count == 0 || !convs.TryGetValue(Name(node.Inputs[0]), out var folded))
                        throw new InvalidDataException($"{path}: node '{node.Name}': BatchNormalization does not follow a Conv");
                    var (conv, weight, convBias, shape) = folded;
                    var (scale, shift, mean, variance) = (Init(node, 1), Init(node, 2), Init(node, 3), Init(node, 4));
                    float eps = node.Float("epsilon", 1e-5f);
                    int perChannel = weight.Length / shape[0];
                    for (int c = 0; c < shape[0]; c++)
                    {
                        float factor = scale[c] / MathF.Sqrt(variance[c] + eps);
                        for (int i = 0; i < perChannel; i++) weight[c * perChannel + i] *= factor;
                        convBias[c] = (convBias[c] - mean[c]) * factor + shift[c];
                    }
                    renamed[node.Outputs[0]] = conv.Outputs[0];
                    break;
                }
                case "Relu" or "Add" or "MaxPool":
                    if (node.OpType == "Relu" && graph.Nodes.Any(n => n.OpType == "Add" && n.Outputs[0] == node.Inputs[0]))
                        blockOutputs.Add(node.Outputs[0]);
                    order.Add(node);
                    break;
                default:
                    throw new InvalidDataException(
                        $"{path}: node '{node.Name}' has op {node.OpType}, which this ResNet builder does not know");
            }
        }
        float[] Init(OnnxNode node, int input) => Initializer(node, input).Floats!;

        // a float initializer named by input `input` of `node`; a forged graph gets an error naming both
        HostTensor Initializer(OnnxNode node, int input) =>
            input < node.Inputs.Count && graph.Initializers.TryGetValue(node.Inputs[input], out var tensor) && tensor.Floats != null
                ? tensor
                : throw new InvalidDataException($"{path}: node '{node.Name}' ({node.OpType}): input {input} is not a float initializer");

        if (blockOutputs.Count == 0) throw new InvalidDataException($"{path}: the graph has no residual blocks (Add then Relu)");
        // A residual stage ends where the next one downsamples, and the last block ends the last stage.
        _stageOutputs.AddRange(blockOutputs.Where(stridedInputs.Contains).Append(blockOutputs[^1]).Distinct());
        foreach (var node in order)
        {
            var inputs = node.Inputs.Select(Name).ToArray();
            Func<Func<string, Tensor>, Tensor> run = node.OpType switch
            {
                "Conv" => ConvStep(node, convs[node.Outputs[0]], inputs[0]),
                "Relu" => value => value(inputs[0]).Relu(),
                "Add" => value => value(inputs[0]) + value(inputs[1]),
                _ => MaxPoolStep(node, inputs[0]),
            };
            _steps.Add((node.Outputs[0], run));
            if (node.Outputs[0] == _stageOutputs[^1]) break;
        }
    }

    private Func<Func<string, Tensor>, Tensor> ConvStep(
        OnnxNode node, (OnnxNode Node, float[] Weight, float[] Bias, int[] Shape) conv, string input)
    {
        string name = $"conv{_steps.Count.ToString(CultureInfo.InvariantCulture)}";
        var weight = AddBuffer(name + ".weight", Tensor.FromArray(conv.Weight, conv.Shape, Device));
        var bias = AddBuffer(name + ".bias", Tensor.FromArray(conv.Bias, [conv.Shape[0]], Device));
        int stride = Stride(node);
        var pads = Pads(node);
        return value => Tensor.Conv2d(value(input), weight, bias, stride, pads);
    }

    private static Func<Func<string, Tensor>, Tensor> MaxPoolStep(OnnxNode node, string input)
    {
        var kernel = node.Ints("kernel_shape");
        if (kernel[0] != kernel[1]) throw new NotSupportedException($"ONNX node '{node.Name}': non-square pooling kernel");
        int stride = Stride(node);
        var pads = Pads(node);
        return value => Tensor.MaxPool2d(value(input), (int)kernel[0], stride, pads);
    }

    private static int Stride(OnnxNode node)
    {
        var strides = node.Ints("strides", [1, 1]);
        return strides[0] == strides[1] ? (int)strides[0] : throw new NotSupportedException($"ONNX node '{node.Name}': unequal strides");
    }

    // ONNX pads are [top, left, bottom, right] for 2-D (all begins, then all ends).
    private static Padding2d Pads(OnnxNode node)
    {
        var p = node.Ints("pads", [0, 0, 0, 0]);
        return new Padding2d((int)p[0], (int)p[1], (int)p[2], (int)p[3]);
    }

    protected override IReadOnlyList<Tensor> Features(Tensor images)
    {
        var values = new Dictionary<string, Tensor> { [_input] = Preprocess(images) };
        foreach (var (output, run) in _steps) values[output] = run(name => values[name]);
        return _stageOutputs.Select(name => values[name]).ToList();
    }

    /// <summary>The network's output without a classifier: the last stage's activations averaged over space (the
    /// graph's final AveragePool at 224×224 input), (B, 512), for images in [−1, 1] with 1 or 3 channels.</summary>
    public Tensor PooledFeatures(Tensor images) => Features(images)[^1].Mean([2, 3]);

    /// <summary>[−1, 1] RGB (or grey) → 0–255 BGR minus the channel means, padded to a multiple of 32.</summary>
    private Tensor Preprocess(Tensor images)
    {
        int channels = images.Size(1);
        var rgb = channels switch
        {
            3 => images,
            1 => images.Expand([images.Size(0), 3, images.Size(2), images.Size(3)]),
            _ => throw new ArgumentException($"ResNet18 LPIPS: images need 1 or 3 channels, got {Tensor.ShapeString(images.Shape)}"),
        };
        var bgr = Tensor.Concat([rgb.Slice(1, 2, 1), rgb.Slice(1, 1, 1), rgb.Slice(1, 0, 1)], 1);
        var x = bgr * 127.5f + _offset;
        return PadTo(PadTo(x, 2), 3);
    }

    private static Tensor PadTo(Tensor x, int dim)
    {
        int missing = (SizeMultiple - x.Size(dim) % SizeMultiple) % SizeMultiple;
        if (missing == 0) return x;
        var shape = x.Shape.ToArray();
        shape[dim] = missing;
        return Tensor.Concat([x, Tensor.Zeros(shape, x.Device)], dim);
    }

    protected override Tensor ReduceChannels(int layer, Tensor squaredDifference) => squaredDifference.Mean(1, keepDim: true);
}
