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
    /// Runs one stage of a model (a block). While no graph is recorded (<see cref="Autograd.NoGrad"/>, e.g.
    /// sampling), nothing can need the stage's intermediates later, so they go back to the allocator as soon
    /// as it returns and only its result stays; with grad mode on, the graph may need them and this just runs it.
    /// </summary>
    public static Tensor Stage(Func<Tensor> stage)
    {
        if (Autograd.IsEnabled) return stage();
        using var scope = new TensorScope();
        return scope.Keep(stage());
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
