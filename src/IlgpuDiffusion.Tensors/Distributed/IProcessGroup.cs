namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>
/// The processes (ranks) of one data-parallel job and the collectives they run on host memory. Every rank calls the
/// same collectives in the same order with the same sizes; a collective that does not complete within the group's
/// timeout, or that MPI reports as failed, throws <see cref="DistributedException"/> instead of waiting forever.
/// </summary>
public interface IProcessGroup : IDisposable
{
    /// <summary>This process's number, 0 to <see cref="Size"/> − 1; rank 0 writes the job's files.</summary>
    int Rank { get; }
    int Size { get; }

    /// <summary>This process's number among the ranks on its machine (it picks the GPU).</summary>
    int LocalRank { get; }
    int LocalSize { get; }

    /// <summary>Elementwise sum over the ranks, in place; every rank gets the same values.</summary>
    void AllReduceSum(Span<float> values);

    /// <inheritdoc cref="AllReduceSum(Span{float})"/>
    void AllReduceSum(Span<double> values);

    /// <summary>Overwrites <paramref name="bytes"/> on every rank with rank 0's.</summary>
    void Broadcast(Span<byte> bytes);

    /// <summary>Every rank's <paramref name="value"/>, by rank.</summary>
    ulong[] AllGather(ulong value);

    /// <summary>Ends the whole job now with <paramref name="exitCode"/>: a failed rank calls it so the others stop instead of
    /// waiting for it. Does not return.</summary>
    void Abort(int exitCode);
}

/// <summary>An MPI call failed, a collective timed out (another rank died or hangs), or the MPI library is missing.</summary>
public sealed class DistributedException(string message) : IOException(message);

/// <summary>The job of one process: every collective is the identity.</summary>
public sealed class SingleProcess : IProcessGroup
{
    public static SingleProcess Instance { get; } = new();

    public int Rank => 0;
    public int Size => 1;
    public int LocalRank => 0;
    public int LocalSize => 1;
    public void AllReduceSum(Span<float> values) { }
    public void AllReduceSum(Span<double> values) { }
    public void Broadcast(Span<byte> bytes) { }
    public ulong[] AllGather(ulong value) => [value];
    public void Abort(int exitCode) => Environment.Exit(exitCode);
    public void Dispose() { }
}
