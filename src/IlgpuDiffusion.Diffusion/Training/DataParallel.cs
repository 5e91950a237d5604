using System.Diagnostics;
using System.Runtime.InteropServices;
using IlgpuDiffusion.Diffusion.Data;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Distributed;
using IlgpuDiffusion.Tensors.IO;
using IlgpuDiffusion.Tensors.Nn;
using IlgpuDiffusion.Tensors.Optim;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// What the trainers do differently when they run as N ranks of one job (<c>mpiexec -n N ildm train-…</c>): the config's
/// batch size is the global batch, split into disjoint shares (<see cref="DataLoader.Share"/>); each rank weighs its
/// batch-mean loss by its share (<see cref="Weigh"/>) and the gradients are summed over the ranks before each optimiser
/// step, bucket by bucket while the backward pass runs (<see cref="Backward"/>), which gives the whole batch's gradient —
/// the average for equal shares. Random draws are cut to the share of a draw for the whole batch (<see cref="Draws"/>),
/// so N ranks compute what one process computes with the same batch, up to float32 summation order. Every rank starts
/// from rank 0's weights, the ranks' parameter digests are compared every <c>checkSteps</c> steps, and rank 0 alone
/// writes files (<see cref="IsMain"/>). With one process (<see cref="Single"/>) all of this is the identity.
/// </summary>
public sealed class DataParallel(IProcessGroup group, IGradientReducer? reducer, int checkSteps) : IDisposable
{
    private readonly Stopwatch _gradientWait = new(), _lossWatch = new();
    private TimeSpan _gradientDuringBackward;

    public static DataParallel Single { get; } = new(SingleProcess.Instance, null, 0);

    public IProcessGroup Group => group;
    public string? ReducerName => reducer?.Name;
    public bool IsMain => group.Rank == 0;
    public (int Rank, int Ranks) Share => (group.Rank, group.Size);

    /// <summary>Time the steps waited after their backward passes for the gradients' sums over the ranks (waiting for slower
    /// ranks included).</summary>
    public TimeSpan GradientWait => _gradientWait.Elapsed;

    /// <summary>Optimiser steps whose gradients were summed.</summary>
    public long ReducedSteps { get; private set; }

    /// <summary>Every rank continues from rank 0's parameters and buffers (after initialisation or resume).</summary>
    public void Start(params Module[] modules)
    {
        if (group.Size == 1) return;
        foreach (var module in modules)
            foreach (var (_, tensor) in module.StateDict()) Broadcast(tensor);
    }

    /// <summary><paramref name="loss"/> (a mean over this rank's share) weighted by the share, so that the ranks' gradients
    /// add up to the whole batch's.</summary>
    public static Tensor Weigh(Tensor loss, BatchShard shard) => shard.Count == shard.Total ? loss : loss.Mul(shard.Weight);

    /// <summary>Cuts <paramref name="generator"/>'s draws to this share of the whole batch's draws until disposed.</summary>
    public static IDisposable Draws(Generator generator, BatchShard shard) => generator.DrawShare(shard.Start, shard.Count, shard.Total);

    /// <summary>Runs <paramref name="loss"/>'s backward pass. When <paramref name="stepNext"/> is given (the pass is the last
    /// before its step) its parameters' gradients are also summed over the ranks: each bucket's all-reduce starts as soon as
    /// the pass has finished the bucket's gradients, and this returns when all are summed.</summary>
    public void Backward(Tensor loss, Adam? stepNext)
    {
        if (reducer == null || stepNext == null)
        {
            loss.Backward();
            return;
        }
        using var buckets = new GradientBuckets(stepNext.Parameters, reducer);
        loss.Backward();
        _gradientWait.Start();
        buckets.Finish();
        _gradientWait.Stop();
        _gradientDuringBackward += buckets.DuringBackward;
        ReducedSteps++;
    }

    /// <summary>The whole batch's losses from each rank's batch-mean losses (weighted by the shares and summed); every rank
    /// gets the same values, so all of them log, and stop on a non-finite loss, alike.</summary>
    public Dictionary<string, double> Losses(IReadOnlyDictionary<string, double> losses, BatchShard shard)
    {
        if (group.Size == 1) return losses.ToDictionary();
        var names = losses.Keys.ToArray(); // the same order on every rank: each ran the same step
        var values = names.Select(n => losses[n] * shard.Count / shard.Total).ToArray();
        _lossWatch.Start();
        group.AllReduceSum(values);
        _lossWatch.Stop();
        return names.Zip(values).ToDictionary(p => p.First, p => p.Second);
    }

    /// <summary>After each step: buffers (BatchNorm running statistics, which each rank computes from its share) become rank 0's
    /// on every rank, as PyTorch DDP's broadcast_buffers does; every <c>checkSteps</c> steps the ranks' parameter digests must
    /// agree.</summary>
    public void AfterStep(long step, params Module[] modules)
    {
        if (group.Size == 1) return;
        foreach (var module in modules)
            foreach (var (_, buffer) in module.NamedBuffers()) Broadcast(buffer);
        if (checkSteps > 0 && step % checkSteps == 0) CheckInSync(step, modules);
    }

    /// <summary>Fails on every rank when the ranks' parameters are not bit-identical.</summary>
    public void CheckInSync(long step, params Module[] modules)
    {
        var digests = group.AllGather(ParameterDigest.Of(modules.SelectMany(m => m.Parameters())));
        if (digests.Distinct().Count() > 1)
        {
            throw new DistributedException($"after step {step} the ranks' parameters differ (digests by rank: "
                + $"{string.Join(", ", digests.Select(d => d.ToString("x16")))}); the ranks computed different updates");
        }
    }

    /// <summary>A line for the log: ranks, reducer, and the time the reductions took.</summary>
    public string Summary()
    {
        double each = GradientWait.TotalMilliseconds / Math.Max(1, ReducedSteps);
        return $"data-parallel: {group.Size} ranks; {ReducedSteps} gradient all-reduces ({reducer?.Name ?? "none"}) waited "
            + $"{GradientWait.TotalSeconds:F2} s after the backward passes ({each:F1} ms each, waiting for slower ranks included) "
            + $"and took {_gradientDuringBackward.TotalSeconds:F2} s within them (copies, starts); the loss all-reduces "
            + $"{_lossWatch.Elapsed.TotalSeconds:F2} s";
    }

    public void Dispose()
    {
        reducer?.Dispose();
        group.Dispose();
    }

    private void Broadcast(Tensor tensor)
    {
        if (tensor.DType == DType.Int32)
        {
            var ints = tensor.ToIntArray();
            group.Broadcast(MemoryMarshal.AsBytes(ints.AsSpan()));
            tensor.CopyFrom(HostTensor.FromInts([.. tensor.Shape], ints));
        }
        else
        {
            var floats = tensor.ToArray();
            group.Broadcast(MemoryMarshal.AsBytes(floats.AsSpan()));
            tensor.CopyFrom(floats);
        }
    }
}
