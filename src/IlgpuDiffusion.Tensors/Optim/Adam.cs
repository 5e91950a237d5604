namespace IlgpuDiffusion.Tensors.Optim;

/// <summary>
/// torch.optim.Adam: per parameter, m and v moments and a step count, bias-corrected update
/// p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps), with optional L2 weight decay added to the
/// gradient. The update runs as one kernel per parameter on the parameter's device, in place.
/// </summary>
public sealed class Adam : IDisposable
{
    private readonly List<Tensor> _parameters;
    private readonly Dictionary<Tensor, State> _state = new(ReferenceEqualityComparer.Instance);

    public Adam(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
        float weightDecay = 0f)
    {
        _parameters = parameters.ToList();
        if (lr < 0) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be ≥ 0");
        if (beta1 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
    }

    public float LearningRate { get; set; }
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; }
    public IReadOnlyList<Tensor> Parameters => _parameters;

    /// <summary>Moments and step count of one parameter (exposed for checkpoints).</summary>
    public sealed class State(Tensor m, Tensor v)
    {
        public Tensor ExpAvg { get; } = m;
        public Tensor ExpAvgSq { get; } = v;
        public long Step { get; set; }
    }

    public State? StateOf(Tensor parameter) => _state.GetValueOrDefault(parameter);

    /// <summary>Installs saved state for <paramref name="parameter"/> (resume).</summary>
    public void SetState(Tensor parameter, float[] expAvg, float[] expAvgSq, long step)
    {
        var state = GetOrCreate(parameter);
        state.ExpAvg.CopyFrom(expAvg);
        state.ExpAvgSq.CopyFrom(expAvgSq);
        state.Step = step;
    }

    private State GetOrCreate(Tensor p)
    {
        if (_state.TryGetValue(p, out var s)) return s;
        using var unowned = TensorScope.Suspend();
        s = new State(Tensor.Zeros(p.Shape.ToArray(), p.Device), Tensor.Zeros(p.Shape.ToArray(), p.Device));
        _state[p] = s;
        return s;
    }

    /// <summary>Updates every parameter that has a gradient.</summary>
    public void Step()
    {
        foreach (var p in _parameters)
        {
            if (p.Grad is not { } g) continue;
            var s = GetOrCreate(p);
            s.Step++;
            double bias1 = 1 - Math.Pow(Beta1, s.Step), bias2 = 1 - Math.Pow(Beta2, s.Step);
            p.Backend.AdamStep(p.View, g.View, s.ExpAvg.View, s.ExpAvgSq.View, p.Count,
                Beta1, Beta2, Eps, WeightDecay, (float)(LearningRate / bias1), (float)Math.Sqrt(bias2));
        }
    }

    /// <summary>Drops the gradients (PyTorch's set_to_none), returning their memory.</summary>
    public void ZeroGrad()
    {
        foreach (var p in _parameters)
        {
            p.Grad?.Dispose();
            p.Grad = null;
        }
    }

    public void Dispose()
    {
        foreach (var s in _state.Values) { s.ExpAvg.Dispose(); s.ExpAvgSq.Dispose(); }
        _state.Clear();
    }
}
