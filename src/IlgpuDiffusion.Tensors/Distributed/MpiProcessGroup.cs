using System.Diagnostics;
using System.Runtime.InteropServices;
using static IlgpuDiffusion.Tensors.Distributed.MpiNative;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>
/// MPI_COMM_WORLD through MPICH's C ABI (<see cref="MpiNative"/>). Errors are returned (MPI_ERRORS_RETURN) and become
/// <see cref="DistributedException"/>s; every collective is started non-blocking and polled with MPI_Test until it
/// completes or <see cref="Timeout"/> passes, so a rank whose peer died fails with an error instead of hanging.
/// One thread calls MPI at a time (MPI_THREAD_SERIALIZED); the training loop is that thread.
/// </summary>
public sealed class MpiProcessGroup : IProcessGroup
{
    private bool _finalized;

    private MpiProcessGroup(TimeSpan timeout) => Timeout = timeout;

    public int Rank { get; private set; }
    public int Size { get; private set; }
    public int LocalRank { get; private set; }
    public int LocalSize { get; private set; }

    /// <summary>How long a collective may wait for the other ranks.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Time spent inside collectives (waiting for other ranks included), for the scaling report.</summary>
    public TimeSpan CollectiveTime { get; private set; }

    /// <summary>Whether launchers' variables say this process is one rank of an MPI job (mpiexec/Hydra, Slurm with PMI).</summary>
    public static bool LaunchedByMpi() =>
        new[] { "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "PMIX_RANK" }.Any(v => Environment.GetEnvironmentVariable(v) != null);

    /// <summary>Initialises MPI (loading the library only now) and finds this rank's place.</summary>
    public static MpiProcessGroup Start(TimeSpan timeout)
    {
        EnsureLoaded();
        var group = new MpiProcessGroup(timeout);
        Check(MPI_Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0) Check(MPI_Init_thread(IntPtr.Zero, IntPtr.Zero, ThreadSerialized, out _), "MPI_Init_thread");
        Check(MPI_Comm_set_errhandler(CommWorld, ErrorsReturn), "MPI_Comm_set_errhandler");
        Check(MPI_Comm_rank(CommWorld, out int rank), "MPI_Comm_rank");
        Check(MPI_Comm_size(CommWorld, out int size), "MPI_Comm_size");
        Check(MPI_Comm_split_type(CommWorld, CommTypeShared, rank, InfoNull, out int local), "MPI_Comm_split_type");
        Check(MPI_Comm_rank(local, out int localRank), "MPI_Comm_rank");
        Check(MPI_Comm_size(local, out int localSize), "MPI_Comm_size");
        Check(MPI_Comm_free(ref local), "MPI_Comm_free");
        group.Rank = rank;
        group.Size = size;
        group.LocalRank = localRank;
        group.LocalSize = localSize;
        return group;
    }

    public void AllReduceSum(Span<float> values) => AllReduce(values, FloatType, "all-reduce");
    public void AllReduceSum(Span<double> values) => AllReduce(values, DoubleType, "all-reduce");

    /// <summary>Starts an in-place sum of a pinned buffer (its first <paramref name="count"/> values); finish it with
    /// <see cref="Wait"/> (or <see cref="Test"/>). Lets a caller overlap computing with the transfer.</summary>
    public int StartAllReduceSum(float[] pinned, int count)
    {
        Check(MPI_Iallreduce(InPlace, Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0), count, FloatType, Sum, CommWorld, out int request),
            "MPI_Iallreduce");
        return request;
    }

    public unsafe void Broadcast(Span<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            Check(MPI_Ibcast((IntPtr)p, bytes.Length, ByteType, 0, CommWorld, out int request), "MPI_Ibcast");
            Wait(request, "broadcast");
        }
    }

    public unsafe ulong[] AllGather(ulong value)
    {
        var all = new ulong[Size];
        fixed (ulong* p = all)
        {
            Check(MPI_Iallgather((IntPtr)(&value), 1, UnsignedLongLongType, (IntPtr)p, 1, UnsignedLongLongType, CommWorld, out int request),
                "MPI_Iallgather");
            Wait(request, "all-gather");
        }
        return all;
    }

    /// <summary>Whether a started collective has completed (then its request is freed: do not wait for it); advances MPI's
    /// started collectives either way.</summary>
    public bool Test(int request, string what)
    {
        Check(MPI_Test(ref request, out int done, StatusIgnore), what);
        return done != 0;
    }

    /// <summary>Polls a started collective until it completes; past <see cref="Timeout"/> it throws (MPI cannot cancel a
    /// collective, so the caller then aborts the job).</summary>
    public void Wait(int request, string what)
    {
        var watch = Stopwatch.StartNew();
        var spin = new SpinWait();
        try
        {
            while (true)
            {
                Check(MPI_Test(ref request, out int done, StatusIgnore), what);
                if (done != 0) return;
                if (watch.Elapsed > Timeout)
                    throw new DistributedException($"rank {Rank}: {what} did not complete within {Timeout.TotalSeconds:0.#} s: "
                        + "another rank stopped or hangs (see its output); the job is being stopped (raise --dist-timeout for slow steps)");
                // Spin briefly for low latency, then sleep so a waiting rank leaves its core to the ranks still computing.
                if (spin.Count < 100) spin.SpinOnce(sleep1Threshold: -1);
                else Thread.Sleep(1);
            }
        }
        finally
        {
            CollectiveTime += watch.Elapsed;
        }
    }

    public void Abort(int exitCode)
    {
        // If MPI_Abort itself cannot reach the launcher, still leave within a bounded time.
        new Thread(() =>
        {
            Thread.Sleep(TimeSpan.FromSeconds(10));
            Environment.Exit(exitCode);
        })
        { IsBackground = true }.Start();
        Console.Out.Flush();
        Console.Error.Flush();
        Thread.Sleep(200); // the launcher forwards this rank's last lines (its error) before MPI_Abort makes it kill the job
        MPI_Abort(CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        Check(MPI_Finalize(), "MPI_Finalize");
    }

    private unsafe void AllReduce<T>(Span<T> values, int datatype, string what) where T : unmanaged
    {
        fixed (T* p = values)
        {
            Check(MPI_Iallreduce(InPlace, (IntPtr)p, values.Length, datatype, Sum, CommWorld, out int request), "MPI_Iallreduce");
            Wait(request, what);
        }
    }

    private static void Check(int code, string call)
    {
        if (code != Success) throw new DistributedException($"{call} failed: {ErrorText(code)}");
    }
}
