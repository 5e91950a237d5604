using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>Where a loader stands: the next batch is batch <see cref="Position"/> of epoch
/// <see cref="Epoch"/>, whose order was drawn from a generator at (<see cref="Seed"/>,
/// <see cref="Offset"/>). Four numbers a checkpoint stores to resume the exact batch sequence.</summary>
public readonly record struct DataLoaderState(int Epoch, int Position, ulong Seed, ulong Offset);

/// <summary>A batch on the host: <see cref="Data"/> is <see cref="Shape"/> (B×C×H×W) row-major,
/// <see cref="Indices"/> the data set items it holds.</summary>
public sealed record HostBatch(float[] Data, int[] Shape, int[] Indices)
{
    private readonly BatchShard? _shard;

    /// <summary>Which part of the whole batch this is (data-parallel training); the whole batch by default.</summary>
    public BatchShard Shard
    {
        get => _shard ?? new BatchShard(0, Indices.Length, Indices.Length);
        init => _shard = value;
    }

    /// <summary>The batch as a tensor on <paramref name="device"/>. Call it on the training thread:
    /// the tensor then joins that thread's scope and allocator like any other.</summary>
    public Tensor ToTensor(Device device) => Tensor.FromArray(Data, Shape, device);
}

/// <summary>
/// Batches of a data set, reshuffled every epoch from the engine's counter-based
/// <see cref="Generator"/>, so that (epoch, position, seed, offset) fixes every following batch and
/// a resumed run sees the batches it would have seen. While the caller trains on one batch, the next
/// <c>prefetch</c> are gathered on background tasks (items read in parallel; the data set's
/// CopyTo must be thread-safe). Host batches only: tensors are made on the caller's thread by
/// <see cref="HostBatch.ToTensor"/>, since tensor scopes are per thread. One consumer thread.
/// </summary>
public sealed class DataLoader : IDisposable
{
    // Mixed into the seed so the shuffle does not replay the numbers of a noise generator that
    // a trainer seeds with the same config seed.
    private const ulong ShuffleStream = 0x5348_5546_464C_4531; // "SHUFFLE1"

    private readonly IImageDataset _dataset;
    private readonly int _batchSize;
    private readonly bool _shuffle;
    private readonly int _prefetch;
    private readonly Generator _generator;
    private readonly Queue<(DataLoaderState After, Task<HostBatch>? Batch)> _pending = new();
    private CancellationTokenSource _cancel = new();
    private DataLoaderState _state;
    // The planner runs ahead of _state by the queued items; _plannedOrder is its epoch's order
    // (null until drawn), after which _generator stands just past that draw.
    private DataLoaderState _planned;
    private int[]? _plannedOrder;
    private bool _disposed;
    private (int Rank, int Ranks) _share = (0, 1);

    public DataLoader(IImageDataset dataset, int batchSize, ulong seed, bool shuffle = true,
        bool dropLast = false, int prefetch = 2)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(prefetch);
        _dataset = dataset;
        _batchSize = batchSize;
        _shuffle = shuffle;
        _prefetch = prefetch;
        BatchesPerEpoch = dropLast ? dataset.Count / batchSize : (dataset.Count + batchSize - 1) / batchSize;
        if (BatchesPerEpoch == 0)
        {
            throw new ArgumentException(
                $"{dataset.Name} has {dataset.Count} items, fewer than one batch of {batchSize} with drop-last");
        }
        _generator = new Generator(seed ^ ShuffleStream);
        _state = new DataLoaderState(0, 0, _generator.Seed, _generator.Offset);
        _planned = _state;
    }

    public IImageDataset Dataset => _dataset;
    public int BatchesPerEpoch { get; }

    /// <summary>
    /// This process's place among the ranks of a data-parallel job: every batch is split into disjoint shares
    /// (<see cref="BatchShard.Of"/>) and only this rank's is gathered. Order, positions and <see cref="State"/> stay those of the
    /// whole batches, the same on every rank, so a saved state resumes with any number of ranks.
    /// </summary>
    public (int Rank, int Ranks) Share
    {
        get => _share;
        init
        {
            int lastBatch = _dataset.Count - (BatchesPerEpoch - 1) * _batchSize;
            int smallest = Math.Min(_batchSize, lastBatch);
            if (value.Ranks > smallest)
            {
                throw new ArgumentException($"each of the {value.Ranks} ranks needs at least one item of every batch, but {_dataset.Name} "
                    + $"({_dataset.Count} items) in batches of {_batchSize} has a batch of {smallest}: use fewer ranks, or change the "
                    + "batch size or dataset_params.max_images");
            }
            _share = value;
        }
    }

    /// <summary>The state after the batches handed out so far (not counting prefetched ones).</summary>
    public DataLoaderState State => _state;

    /// <summary>The next batch of the current epoch, or false once the epoch is over; the call after
    /// that starts the next epoch. When reading a batch fails, the state stays before it, so a
    /// retry reads it again.</summary>
    public bool TryNext([MaybeNullWhen(false)] out HostBatch batch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Plan();
        var (after, next) = _pending.Dequeue();
        Plan(); // keep the background work going while this call waits
        try
        {
            batch = next?.GetAwaiter().GetResult();
        }
        catch
        {
            Restart(_state);
            throw;
        }
        _state = after;
        return next is not null;
    }

    /// <summary>Continues from a state saved from <see cref="State"/> (same data set and batch size).</summary>
    public void Restore(DataLoaderState state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (state.Epoch < 0 || state.Position < 0 || state.Position > BatchesPerEpoch)
        {
            throw new ArgumentOutOfRangeException(nameof(state), state,
                $"position must be within the {BatchesPerEpoch} batches of an epoch");
        }
        Restart(state);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        DropPending();
    }

    private void Restart(DataLoaderState state)
    {
        DropPending();
        _cancel = new CancellationTokenSource();
        _state = state;
        _planned = state;
        _plannedOrder = null;
    }

    /// <summary>Queues work until <c>prefetch</c> items are ahead. Each item is a batch task, or null
    /// for the end of an epoch; each carries the state after it is consumed.</summary>
    private void Plan()
    {
        while (_pending.Count < _prefetch)
        {
            if (_plannedOrder is null)
            {
                _generator.SetState(_planned.Seed, _planned.Offset);
                _plannedOrder = _shuffle ? Permutation(_dataset.Count, _generator) : Enumerable.Range(0, _dataset.Count).ToArray();
            }
            int position = _planned.Position;
            if (position == BatchesPerEpoch)
            {
                _planned = new DataLoaderState(_planned.Epoch + 1, 0, _generator.Seed, _generator.Offset);
                _plannedOrder = null;
                _pending.Enqueue((_planned, null));
                continue;
            }
            int start = position * _batchSize;
            var shard = BatchShard.Of(Math.Min(_batchSize, _dataset.Count - start), _share.Rank, _share.Ranks);
            var indices = _plannedOrder.AsSpan(start + shard.Start, shard.Count).ToArray();
            var token = _cancel.Token;
            _planned = _planned with { Position = position + 1 };
            _pending.Enqueue((_planned, Task.Run(() => Gather(indices, token) with { Shard = shard }, token)));
        }
    }

    /// <summary>Fisher–Yates with one exact uniform draw per swap.</summary>
    private static int[] Permutation(int count, Generator generator)
    {
        var order = Enumerable.Range(0, count).ToArray();
        for (int i = count - 1; i > 0; i--)
        {
            int j = generator.NextInts(1, i + 1)[0];
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    private HostBatch Gather(int[] indices, CancellationToken token)
    {
        int itemLength = _dataset.ValuesPerItem();
        var data = new float[indices.Length * itemLength];
        try
        {
            Parallel.For(0, indices.Length, new ParallelOptions { CancellationToken = token },
                i => _dataset.CopyTo(indices[i], data.AsSpan(i * itemLength, itemLength)));
        }
        catch (AggregateException e)
        {
            // The caller sees the data set's own exception (e.g. the file that failed), not a wrapper.
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return new HostBatch(data, [indices.Length, _dataset.ImageChannels, _dataset.ImageSize, _dataset.ImageSize], indices);
    }

    /// <summary>Cancels and waits for the queued work; its results and errors no longer matter.</summary>
    private void DropPending()
    {
        _cancel.Cancel();
        foreach (var (_, task) in _pending)
        {
            try
            {
                task?.Wait();
            }
            catch (AggregateException)
            {
                // Cancelled, or failed on an item nobody will ask for now.
            }
        }
        _pending.Clear();
        _cancel.Dispose();
    }
}
