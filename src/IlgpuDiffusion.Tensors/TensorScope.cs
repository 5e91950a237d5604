namespace IlgpuDiffusion.Tensors;

/// <summary>
/// Owns every tensor created on this thread while it is the innermost scope, and disposes them at the
/// end (e.g. one training step), so device memory goes back to the caching allocator deterministically.
/// Tensors that must outlive the scope are handed out with <see cref="Keep"/> (to the enclosing scope,
/// or to nobody). Tensors created with no scope open belong to the caller (parameters, optimiser state).
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? _current;
    [ThreadStatic] private static int _suspended;

    private readonly TensorScope? _parent;
    private readonly HashSet<Tensor> _owned = new(ReferenceEqualityComparer.Instance);
    private bool _disposed;

    public TensorScope()
    {
        _parent = _current;
        _current = this;
    }

    public int Count => _owned.Count;

    internal static void Register(Tensor t)
    {
        if (_suspended == 0 && _current is { } scope) scope._owned.Add(t);
    }

    /// <summary>Moves <paramref name="t"/> out of this scope into the enclosing one (or to no owner).</summary>
    public Tensor Keep(Tensor t)
    {
        if (_owned.Remove(t)) _parent?._owned.Add(t);
        return t;
    }

    /// <summary>While the returned handle lives, new tensors join no scope (gradients of leaves,
    /// optimiser state, parameters created during a step).</summary>
    public static SuspendHandle Suspend()
    {
        _suspended++;
        return new SuspendHandle();
    }

    public readonly struct SuspendHandle : IDisposable
    {
        public void Dispose() => _suspended--;
    }

    /// <summary>
    /// Runs one stage of a model (a block) and gives back the memory of its intermediates, which its caller cannot
    /// reach: only the result stays. While no graph is recorded (<see cref="Autograd.NoGrad"/>, e.g. sampling) they
    /// go at once; with grad mode on, those a backward rule saved stay until the last such rule has run (PyTorch frees
    /// by reference count; this is the same lifetime), the others go at once.
    /// </summary>
    public static Tensor Stage(Func<Tensor> stage)
    {
        using var scope = new TensorScope();
        var result = scope.Keep(stage());
        if (Autograd.IsEnabled) scope.HandToGraph();
        return result;
    }

    /// <summary>Releases what no backward rule saved and hands every tensor (still nodes of the graph) to the enclosing
    /// scope, which disposes them at its end.</summary>
    private void HandToGraph()
    {
        foreach (var t in _owned) t.ReleaseUnlessSaved();
        _parent?._owned.UnionWith(_owned);
        _owned.Clear();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_current != this) throw new InvalidOperationException("tensor scopes must be disposed in the reverse order of creation");
        _current = _parent;
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }
}
