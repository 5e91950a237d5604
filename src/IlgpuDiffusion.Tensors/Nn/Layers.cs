namespace IlgpuDiffusion.Tensors.Nn;

public sealed class Conv2d : Layer
{
    public Conv2d(Device device, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0,
        bool bias = true, Generator? init = null)
        : base(device)
    {
        Stride = stride;
        Padding = padding;
        Weight = AddParameter("weight", outChannels, inChannels, kernelSize, kernelSize);
        Bias = bias ? AddParameter("bias", outChannels) : null;
        Init.DefaultLayer(Weight, Bias, inChannels * kernelSize * kernelSize, init);
    }

    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int Stride { get; }
    public Padding2d Padding { get; set; }

    public override Tensor Forward(Tensor x) => Tensor.Conv2d(x, Weight, Bias, Stride, Padding);
}

public sealed class ConvTranspose2d : Layer
{
    // Mirrors Conv2d on purpose, as torch.nn does; the weight is (in, out, k, k).
    public ConvTranspose2d(Device device, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0,
        bool bias = true, Generator? init = null)
        : base(device)
    {
        Stride = stride;
        Padding = padding;
        Weight = AddParameter("weight", inChannels, outChannels, kernelSize, kernelSize);
        Bias = bias ? AddParameter("bias", outChannels) : null;
        Init.DefaultLayer(Weight, Bias, outChannels * kernelSize * kernelSize, init); // torch uses weight.size(1)·k·k
    }

    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int Stride { get; }
    public int Padding { get; }

    public override Tensor Forward(Tensor x) => Tensor.ConvTranspose2d(x, Weight, Bias, Stride, Padding);
}

public sealed class Linear : Layer
{
    public Linear(Device device, int inFeatures, int outFeatures, bool bias = true, Generator? init = null) : base(device)
    {
        Weight = AddParameter("weight", outFeatures, inFeatures);
        Bias = bias ? AddParameter("bias", outFeatures) : null;
        Init.DefaultLayer(Weight, Bias, inFeatures, init);
    }

    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public override Tensor Forward(Tensor x) => Tensor.Linear(x, Weight, Bias);
}

public sealed class GroupNorm : Layer
{
    public GroupNorm(Device device, int numGroups, int numChannels, float eps = 1e-5f) : base(device)
    {
        if (numChannels % numGroups != 0)
            throw new ArgumentException($"GroupNorm: {numGroups} groups do not divide {numChannels} channels");
        NumGroups = numGroups;
        Eps = eps;
        Weight = AddParameter("weight", numChannels);
        Bias = AddParameter("bias", numChannels);
        Weight.Fill(1f);
    }

    public int NumGroups { get; }
    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }

    public override Tensor Forward(Tensor x) => Tensor.GroupNorm(x, NumGroups, Weight, Bias, Eps);
}

public sealed class BatchNorm2d : Layer
{
    public BatchNorm2d(Device device, int numFeatures, float eps = 1e-5f, float momentum = 0.1f) : base(device)
    {
        Eps = eps;
        Momentum = momentum;
        Weight = AddParameter("weight", numFeatures);
        Bias = AddParameter("bias", numFeatures);
        Weight.Fill(1f);
        using var unowned = TensorScope.Suspend();
        RunningMean = AddBuffer("running_mean", Tensor.Zeros([numFeatures], device));
        RunningVar = AddBuffer("running_var", Tensor.Ones([numFeatures], device));
        NumBatchesTracked = AddBuffer("num_batches_tracked", Tensor.FromArray(new[] { 0 }, [], device));
    }

    public float Eps { get; }
    public float Momentum { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }
    public Tensor NumBatchesTracked { get; }

    /// <summary>num_batches_tracked as the host knows it: counting on the device would read the buffer back every
    /// step, a round trip that stalls a GPU's queue. Null until first needed and after a state dict is loaded.</summary>
    private int? _batchesTracked;

    public override Tensor Forward(Tensor x)
    {
        if (Training)
        {
            _batchesTracked = (_batchesTracked ?? NumBatchesTracked.ToIntArray()[0]) + 1;
            NumBatchesTracked.Fill(_batchesTracked.Value);
        }
        return Tensor.BatchNorm(x, RunningMean, RunningVar, Weight, Bias, Training, Momentum, Eps);
    }

    protected override void OnStateLoaded() => _batchesTracked = null;
}

public sealed class SiLU(Device device) : Layer(device)
{
    public override Tensor Forward(Tensor x) => x.Silu();
}

public sealed class LeakyReLU(Device device, float negativeSlope = 0.01f) : Layer(device)
{
    public float NegativeSlope { get; } = negativeSlope;
    public override Tensor Forward(Tensor x) => x.LeakyRelu(NegativeSlope);
}

public sealed class ReLU(Device device) : Layer(device)
{
    public override Tensor Forward(Tensor x) => x.Relu();
}

/// <summary>nn.MaxPool2d with a square kernel; padding may be asymmetric (ONNX pads).</summary>
public sealed class MaxPool2d(Device device, int kernelSize, int stride, Padding2d padding = default) : Layer(device)
{
    public int KernelSize { get; } = kernelSize;
    public int Stride { get; } = stride;
    public Padding2d Padding { get; } = padding;
    public override Tensor Forward(Tensor x) => Tensor.MaxPool2d(x, KernelSize, Stride, Padding);
}

public sealed class Identity(Device device) : Layer(device)
{
    public override Tensor Forward(Tensor x) => x;
}

/// <summary>Children named "0", "1", … applied in order (nn.Sequential).</summary>
public sealed class Sequential : Layer
{
    private readonly List<Layer> _layers = new();

    public Sequential(Device device, params Layer[] layers) : base(device)
    {
        foreach (var layer in layers) Append(layer);
    }

    public Sequential Append(Layer layer)
    {
        AddModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    public Layer this[int index] => _layers[index];
    public int Count => _layers.Count;

    public override Tensor Forward(Tensor x)
    {
        foreach (var layer in _layers) x = layer.Forward(x);
        return x;
    }
}

/// <summary>Children named "0", "1", … (nn.ModuleList); the owner decides how to call them.</summary>
public sealed class ModuleList<T> : Module where T : Module
{
    private readonly List<T> _items = new();

    public ModuleList(Device device, IEnumerable<T>? items = null) : base(device)
    {
        foreach (var item in items ?? []) Add(item);
    }

    public T Add(T item)
    {
        AddModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), item);
        _items.Add(item);
        return item;
    }

    public T this[int index] => _items[index];
    public int Count => _items.Count;
    public IEnumerable<T> Items => _items;
}

/// <summary>nn.MultiheadAttention (batch_first): packed in_proj_weight (3E, E) / in_proj_bias and out_proj.</summary>
public sealed class MultiheadAttention : Module
{
    public MultiheadAttention(Device device, int embedDim, int numHeads, Generator? init = null) : base(device)
    {
        if (embedDim % numHeads != 0)
            throw new ArgumentException($"MultiheadAttention: embed_dim {embedDim} is not divisible by num_heads {numHeads}");
        NumHeads = numHeads;
        InProjWeight = AddParameter("in_proj_weight", 3 * embedDim, embedDim);
        InProjBias = AddParameter("in_proj_bias", 3 * embedDim);
        OutProj = AddModule("out_proj", new Linear(device, embedDim, embedDim, init: init));
        // torch: xavier_uniform on in_proj_weight, zero biases
        Init.Uniform(InProjWeight, MathF.Sqrt(6f / (embedDim + 3 * embedDim)), init);
        OutProj.Bias!.Fill(0f);
    }

    public int NumHeads { get; }
    public Tensor InProjWeight { get; }
    public Tensor InProjBias { get; }
    public Linear OutProj { get; }

    /// <summary>Attention of <paramref name="query"/> (B, Lq, E) over <paramref name="keyValue"/> (B, Lk, E); pass the
    /// same tensor for self-attention.</summary>
    public Tensor Forward(Tensor query, Tensor keyValue) =>
        Tensor.MultiheadAttention(query, keyValue, NumHeads, InProjWeight, InProjBias, OutProj.Weight, OutProj.Bias!);
}

/// <summary>nn.Embedding: rows of a (num, dim) table picked by int32 indices.</summary>
public sealed class Embedding : Module
{
    public Embedding(Device device, int numEmbeddings, int embeddingDim, Generator? init = null) : base(device)
    {
        Weight = AddParameter("weight", numEmbeddings, embeddingDim);
        using var noGrad = Autograd.NoGrad();
        using var scope = new TensorScope();
        Weight.CopyFrom(Tensor.Randn([numEmbeddings, embeddingDim], init ?? Init.Default, device));
    }

    public Tensor Weight { get; }

    public Tensor Forward(Tensor indices) =>
        Weight.IndexSelect(0, indices.ViewAs([indices.Count])).Reshape([.. indices.Shape, Weight.Size(1)]);
}
