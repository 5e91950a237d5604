using System.Diagnostics;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>
/// One optimiser step's gradient sum over the ranks, overlapped with the backward pass as in PyTorch DDP: the parameters
/// are laid out in buckets, last parameters first (the backward pass finishes them first); the first bucket is small so
/// that the first all-reduce starts early, the others hold up to <see cref="BucketBytes"/>. Created before the backward
/// pass, it hooks every parameter (<see cref="Tensor.OnGradientAccumulated"/>) and hands a bucket to the reducer once the
/// pass has finished all of its gradients and every earlier bucket was handed over, so the buckets start in the same order
/// on every rank whatever order the gradients finish in. <see cref="Finish"/> starts the buckets still waiting (those with
/// a parameter the pass did not reach: every rank runs the same graph, so every rank has the same ones) and waits for all.
/// </summary>
public sealed class GradientBuckets : IDisposable
{
    /// <summary>PyTorch DDP's first bucket (_DEFAULT_FIRST_BUCKET_BYTES): the first all-reduce starts after few layers.</summary>
    public const int FirstBucketBytes = 1 << 20;

    /// <summary>PyTorch DDP's default bucket (bucket_cap_mb = 25): large enough to amortise a collective's latency.</summary>
    public const int BucketBytes = 25 << 20;

    private readonly IGradientReducer _reducer;
    private readonly List<List<Tensor>> _buckets = [];
    private readonly Dictionary<Tensor, int> _bucketOf = new(ReferenceEqualityComparer.Instance);
    private readonly List<int> _unfinished = []; // by bucket: its parameters whose gradient the pass has not finished
    private readonly List<IDisposable> _hooks = [];
    private readonly Stopwatch _duringBackward = new();
    private int _started;

    public GradientBuckets(IReadOnlyList<Tensor> parameters, IGradientReducer reducer)
    {
        _reducer = reducer;
        long bytes = 0;
        for (int i = parameters.Count - 1; i >= 0; i--)
        {
            var parameter = parameters[i];
            long size = parameter.Count * 4L;
            if (_bucketOf.ContainsKey(parameter)) continue; // listed twice
            if (_buckets.Count == 0 || bytes + size > (_buckets.Count == 1 ? FirstBucketBytes : BucketBytes))
            {
                _buckets.Add([]);
                _unfinished.Add(0);
                bytes = 0;
            }
            _bucketOf[parameter] = _buckets.Count - 1;
            _buckets[^1].Add(parameter);
            _unfinished[^1]++;
            bytes += size;
            _hooks.Add(parameter.OnGradientAccumulated(Finished));
        }
    }

    /// <summary>Buckets laid out, in the order they start.</summary>
    public int Count => _buckets.Count;

    /// <summary>Time the hooks took inside the backward pass (copying and starting buckets, letting them progress).</summary>
    public TimeSpan DuringBackward => _duringBackward.Elapsed;

    /// <summary>Removes the hooks, starts the buckets not started yet and waits until every gradient holds its sum.</summary>
    public void Finish()
    {
        Dispose();
        while (_started < _buckets.Count) Start(_started++);
        _reducer.Finish();
    }

    /// <summary>Removes the hooks (a backward pass that failed leaves none behind).</summary>
    public void Dispose()
    {
        foreach (var hook in _hooks) hook.Dispose();
        _hooks.Clear();
    }

    private void Finished(Tensor parameter)
    {
        _duringBackward.Start();
        --_unfinished[_bucketOf[parameter]];
        while (_started < _buckets.Count && _unfinished[_started] == 0) Start(_started++);
        _reducer.Progress();
        _duringBackward.Stop();
    }

    /// <summary>Hands bucket <paramref name="index"/>'s gradients to the reducer; parameters without one are left out.</summary>
    private void Start(int index)
    {
        var gradients = _buckets[index].Select(p => p.Grad).OfType<Tensor>().ToList();
        if (gradients.Count > 0) _reducer.Start(gradients);
    }
}
