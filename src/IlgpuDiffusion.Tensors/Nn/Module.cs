using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Tensors.Nn;

/// <summary>
/// A tree of named parameters, buffers and child modules, as torch.nn.Module: state-dict names are the
/// dotted paths (<c>encoder_layers.0.resnet_conv_first.0.0.weight</c>), in PyTorch's order (own
/// parameters, own buffers, then children). Parameters and buffers belong to the module, not to any
/// <see cref="TensorScope"/>, and are released by <see cref="Dispose"/>.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = new();
    private readonly List<(string Name, Tensor Tensor)> _buffers = new();
    private readonly List<(string Name, Module Module)> _children = new();

    protected Module(Device device) => Device = device;

    public Device Device { get; }
    public bool Training { get; private set; } = true;

    protected T AddModule<T>(string name, T child) where T : Module
    {
        _children.Add((name, child));
        return child;
    }

    /// <summary>A trainable parameter, zero-filled; PyTorch's default init is applied by the layer.</summary>
    protected Tensor AddParameter(string name, params int[] shape)
    {
        using var unowned = TensorScope.Suspend();
        var p = Tensor.Zeros(shape, Device);
        p.RequiresGrad = true;
        p.Name = name;
        _parameters.Add((name, p));
        return p;
    }

    protected Tensor AddBuffer(string name, Tensor value)
    {
        value.Name = name;
        _buffers.Add((name, value));
        return value;
    }

    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters() => Walk(m => m._parameters);
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers() => Walk(m => m._buffers);
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>Parameters and buffers by state-dict name, in PyTorch's order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateDict() => Walk(m => m._parameters.Concat(m._buffers));

    private IEnumerable<(string, Tensor)> Walk(Func<Module, IEnumerable<(string Name, Tensor Tensor)>> own, string prefix = "")
    {
        foreach (var (name, t) in own(this)) yield return (prefix + name, t);
        foreach (var (name, child) in _children)
            foreach (var entry in child.Walk(own, prefix + name + ".")) yield return entry;
    }

    /// <summary>Copies values by name. Shapes must match (the error names the entry); with
    /// <paramref name="strict"/>, missing and unexpected names are errors too.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, HostTensor> state, bool strict = true, string source = "state dict")
    {
        var own = StateDict().ToList();
        if (strict)
        {
            var missing = own.Select(e => e.Name).Where(n => !state.ContainsKey(n)).ToList();
            var unexpected = state.Keys.Except(own.Select(e => e.Name)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new InvalidDataException(
                    $"{source}: does not match {GetType().Name}{Listed("missing", missing)}{Listed("unexpected", unexpected)}");
        }
        foreach (var (name, tensor) in own)
        {
            if (!state.TryGetValue(name, out var value)) continue;
            if (!value.Shape.SequenceEqual(tensor.Shape))
                throw new InvalidDataException($"{source}: entry '{name}' has shape {Tensor.ShapeString(value.Shape)}, " +
                    $"the model expects {Tensor.ShapeString(tensor.Shape)}");
            // int ↔ float conversion would turn a relabelled dtype's bit patterns into garbage weights
            if (value.DType != tensor.DType)
                throw new InvalidDataException($"{source}: entry '{name}' holds {value.DType} values, the model expects {tensor.DType}");
            tensor.CopyFrom(value);
        }
        NotifyStateLoaded();

        // "; missing: a, b, … (+N more)" with at most 10 names, or nothing when there are none
        static string Listed(string what, List<string> names) => names.Count == 0
            ? ""
            : $"; {what}: {string.Join(", ", names.Take(10))}{(names.Count > 10 ? $" (+{names.Count - 10} more)" : "")}";
    }

    /// <summary>Called on every module after <see cref="LoadStateDict"/>, for modules that keep host copies of buffers.</summary>
    protected virtual void OnStateLoaded() { }

    private void NotifyStateLoaded()
    {
        OnStateLoaded();
        foreach (var (_, child) in _children) child.NotifyStateLoaded();
    }

    /// <summary>The state as host tensors (for checkpoints).</summary>
    public IEnumerable<KeyValuePair<string, HostTensor>> StateDictToHost() =>
        StateDict().Select(e => KeyValuePair.Create(e.Name, e.Tensor.ToHost()));

    public Module Train(bool on = true)
    {
        Training = on;
        foreach (var (_, child) in _children) child.Train(on);
        return this;
    }

    public Module Eval() => Train(false);

    public void ZeroGrad()
    {
        foreach (var p in Parameters()) { p.Grad?.Dispose(); p.Grad = null; }
    }

    public virtual void Dispose()
    {
        foreach (var (_, t) in _parameters.Concat(_buffers)) { t.Grad?.Dispose(); t.Dispose(); }
        foreach (var (_, child) in _children) child.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A module with one input and one output (what <see cref="Sequential"/> chains).</summary>
public abstract class Layer(Device device) : Module(device)
{
    public abstract Tensor Forward(Tensor x);
}
