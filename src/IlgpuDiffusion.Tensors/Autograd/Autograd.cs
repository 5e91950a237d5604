namespace IlgpuDiffusion.Tensors;

/// <summary>Grad mode: while a <see cref="NoGrad"/> handle lives, ops record no graph.</summary>
public static class Autograd
{
    [ThreadStatic] private static int _noGradDepth;

    public static bool IsEnabled => _noGradDepth == 0;

    public static NoGradHandle NoGrad()
    {
        _noGradDepth++;
        return new NoGradHandle();
    }

    public readonly struct NoGradHandle : IDisposable
    {
        public void Dispose() => _noGradDepth--;
    }
}

public sealed partial class Tensor
{
    private List<Action<Tensor>>? _gradientHooks; // called when a backward pass has finished this leaf's gradient

    /// <summary>
    /// Calls <paramref name="hook"/> with this leaf during every <see cref="Backward"/> that reaches it, right after that
    /// pass has added all its contributions into <see cref="Grad"/>: no later work of the pass changes the gradient (PyTorch's
    /// post-accumulate-grad hook). Leaves are finished in the pass's order, so a caller can start work on a gradient (a
    /// data-parallel all-reduce) while the pass goes on. Disposing the result removes the hook.
    /// </summary>
    public IDisposable OnGradientAccumulated(Action<Tensor> hook)
    {
        if (!IsLeaf) throw new InvalidOperationException("a gradient hook belongs on a leaf: only leaves accumulate gradients");
        (_gradientHooks ??= []).Add(hook);
        return new GradientHookRegistration(this, hook);
    }

    private sealed class GradientHookRegistration(Tensor leaf, Action<Tensor> hook) : IDisposable
    {
        public void Dispose() => leaf._gradientHooks?.Remove(hook);
    }

    /// <summary>Attaches <paramref name="backward"/> to <paramref name="output"/> when grad mode is on and
    /// some input requires gradients. Every differentiable op ends with this call. <paramref name="saved"/> lists every
    /// tensor whose values the rule reads (inputs, the output, statistics of the forward pass): a tensor the caller can
    /// no longer reach is kept exactly as long as a rule that saved it has not run (<see cref="TensorScope.Stage"/>).</summary>
    internal static Tensor Record(Tensor output, string op, Tensor[] inputs, Tensor[] saved, Func<Tensor, Tensor?[]> backward)
    {
        if (!Autograd.IsEnabled) return output;
        foreach (var input in inputs)
            if (input.RequiresGrad)
            {
                output._requiresGrad = true;
                output.Node = new GradNode(op, inputs, saved, backward);
                foreach (var s in saved) s._savedBy++;
                break;
            }
        return output;
    }

    /// <summary>[<paramref name="t"/>] when a gradient that reads it is <paramref name="needed"/>, else none.</summary>
    internal static Tensor[] SavedIf(bool needed, Tensor t) => needed ? [t] : [];

    /// <summary>Gives this tensor's memory back now unless a recorded backward rule saved it; then only the graph holds it
    /// and the last rule that reads it releases it. Its place in the graph stays either way.</summary>
    internal void ReleaseUnlessSaved()
    {
        if (_savedBy > 0) _heldByGraphOnly = true;
        else ReleaseMemory();
    }

    /// <summary>A rule that saved these tensors has run (or will never run): each is released when it was the last.</summary>
    private static void Unsave(Tensor[] saved)
    {
        foreach (var s in saved)
            if (--s._savedBy == 0 && s._heldByGraphOnly) s.ReleaseMemory();
    }

    /// <summary>
    /// Reverse-mode differentiation from this tensor: gradients flow through the recorded graph and
    /// accumulate into <see cref="Grad"/> of every leaf that requires them. Without an explicit
    /// <paramref name="gradient"/> this tensor must hold one element (gradient 1). The graph is freed
    /// afterwards, as in PyTorch.
    /// </summary>
    public void Backward(Tensor? gradient = null)
    {
        if (!RequiresGrad) throw new InvalidOperationException("backward() on a tensor that does not require gradients");
        if (_graphReleased)
            throw new InvalidOperationException(
                "backward through the graph a second time: its saved tensors were freed by the first backward()");
        if (gradient == null && Count != 1)
            throw new InvalidOperationException(
                $"backward() without a gradient needs a one-element tensor, got shape {ShapeString(_shape)}");
        if (gradient != null) CheckSameShape(this, gradient, "backward");

        var order = TopologicalOrder();
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        using var noGrad = Autograd.NoGrad();
        using (TensorScope.Suspend()) grads[this] = gradient?.Alias(_shape) ?? Full(_shape, 1f, Device);

        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (!grads.Remove(t, out var g)) continue; // no gradient reached this tensor
            if (t._graphReleased)
                throw new InvalidOperationException(
                    "backward through the graph a second time: its saved tensors were freed by the first backward()");
            if (t.Node is not { } node)
            {
                AccumulateLeafGradient(t, g);
                // the reverse topological order has already passed every consumer of t: its gradient is final
                foreach (var hook in t._gradientHooks?.ToArray() ?? []) hook(t);
                continue;
            }
            // The node's temporaries (and the rule's own result objects) go back to the allocator when its scope ends,
            // so the next node reuses warm memory; each gradient lives on as an alias owned by no scope, which this loop
            // disposes once it has been used, so peak memory stays near the forward's.
            var inputGrads = new Tensor?[node.Inputs.Length];
            using (var nodeScope = new TensorScope())
            {
                var results = node.Backward(g);
                using var unowned = TensorScope.Suspend();
                for (int k = 0; k < inputGrads.Length; k++)
                    if (node.Inputs[k].RequiresGrad && results[k] is { } ig) inputGrads[k] = ig.Alias(ig.Dims);
            }
            for (int k = 0; k < node.Inputs.Length; k++)
            {
                var input = node.Inputs[k];
                if (inputGrads[k] is not { } ig) continue;
                if (!ig.Dims.AsSpan().SequenceEqual(input.Dims))
                    throw new InvalidOperationException($"backward of {node.Op} produced a gradient of shape {ShapeString(ig.Dims)} " +
                        $"for an input of shape {ShapeString(input.Dims)}");
                if (grads.Remove(input, out var existing))
                {
                    using (TensorScope.Suspend()) grads[input] = existing.Add(ig);
                    existing.Dispose();
                    ig.Dispose();
                }
                else grads[input] = ig;
            }
            g.Dispose(); // after the inputs' gradients, which may be g itself
            ReleaseNode(t);
        }
        foreach (var t in order) ReleaseNode(t);
    }

    private static void ReleaseNode(Tensor t)
    {
        if (t.Node is not { } node) return;
        t.Node = null;
        t._graphReleased = true;
        Unsave(node.Saved);
    }

    /// <summary>The leaf's first gradient takes over <paramref name="g"/> (an unowned alias) when nothing else shares its
    /// memory, rather than copying it, as PyTorch does; later ones add into it. Either way g is used up.</summary>
    private static void AccumulateLeafGradient(Tensor leaf, Tensor g)
    {
        if (leaf.Grad == null && !g.Storage.IsShared)
        {
            leaf.Grad = g;
            return;
        }
        using (TensorScope.Suspend())
        {
            if (leaf.Grad == null) leaf.Grad = g.Clone();
            else leaf.Grad.AddInPlace(g);
        }
        g.Dispose();
    }

    /// <summary>Tensors reachable from this one through recorded nodes, inputs before outputs (iterative DFS: graphs are deep).</summary>
    private List<Tensor> TopologicalOrder()
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance) { this };
        var stack = new Stack<(Tensor Tensor, int NextInput)>();
        stack.Push((this, 0));
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.Node?.Inputs ?? [];
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var input = inputs[next];
                if (input.RequiresGrad && visited.Add(input)) stack.Push((input, 0));
            }
            else order.Add(t);
        }
        return order;
    }
}
