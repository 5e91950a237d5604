using System.Runtime.ExceptionServices;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// Persistent threads for the managed executor: background workers plus the calling thread run the tasks
/// of one call. Each thread owns a contiguous range of the task indices, the same range for the same task
/// count on every call, so consecutive primitives over the same data (packing then multiplying a GEMM block,
/// one elementwise op after another) find their part of it in their own core's cache; a thread whose range
/// is done takes tasks from the others' through their atomic counters, so a faster thread takes more.
/// A training step makes thousands of calls, most well under a millisecond, so handing each to the
/// ThreadPool costs a noticeable share of the step; these workers instead spin briefly after a call, so
/// back-to-back calls find them awake, and only then park. One call owns the workers at a time: a call
/// that finds them busy (another thread's, or a nested call from inside a task) runs its tasks inline on
/// its own thread, in index order.
/// </summary>
internal sealed class CpuWorkers : IDisposable
{
    /// <summary>The executor's workers: one thread per core besides the caller's.</summary>
    public static CpuWorkers Shared { get; } = new(Environment.ProcessorCount - 1);

    /// <summary>
    /// <see cref="SpinWait.SpinOnce(int)"/> rounds a thread waits before it parks. Past the first ten
    /// (a few microseconds of pause instructions) each round yields the core, about 0.75 µs when nothing else
    /// wants it, so this is roughly 0.1 ms: longer than the host work between two primitives of a step.
    /// </summary>
    private const int SpinRounds = 150;

    private readonly Thread[] threads;

    /// <summary>Parked workers wait on this for the next call or for disposal.</summary>
    private readonly object gate = new();

    /// <summary>The latest call; a worker serves it when it differs from the one it served last.</summary>
    private Call? current;

    private int owned;
    private int parked;
    private volatile bool disposed;

    /// <param name="workers">threads besides the caller's; 0 runs everything inline.</param>
    public CpuWorkers(int workers)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(workers);
        threads = new Thread[workers];
        for (int i = 0; i < workers; i++)
        {
            int thread = i + 1; // 0 is the caller
            threads[i] = new Thread(() => Serve(thread)) { IsBackground = true, Name = $"ildm-cpu-worker-{thread}" };
            threads[i].Start();
        }
    }

    /// <summary>Runs <paramref name="body"/> once for every index in [0, <paramref name="tasks"/>) and returns
    /// when all have finished. If tasks throw, the remaining ones are skipped and the first exception is
    /// rethrown with its original stack trace.</summary>
    public void Run(int tasks, Action<int> body)
    {
        if (tasks > 1 && threads.Length > 0 && !disposed && Interlocked.CompareExchange(ref owned, 1, 0) == 0)
        {
            var call = new Call(tasks, threads.Length + 1, body);
            try
            {
                Volatile.Write(ref current, call);
                // Pairs with the fence in Park: either a parking worker sees the call or we see it parked.
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref parked) > 0)
                    lock (gate) Monitor.PulseAll(gate);
                call.Work(0);
                call.WaitUntilDone();
            }
            finally
            {
                Volatile.Write(ref owned, 0);
            }
            call.Error?.Throw();
            return;
        }
        for (int t = 0; t < tasks; t++)
            body(t);
    }

    /// <summary>Stops the workers once they finish what they are running; later calls run inline.</summary>
    public void Dispose()
    {
        disposed = true;
        lock (gate) Monitor.PulseAll(gate);
        foreach (var thread in threads)
            thread.Join();
    }

    private void Serve(int thread)
    {
        Call? served = null;
        while (NextCall(served) is { } call)
        {
            served = call;
            call.Work(thread);
        }
    }

    /// <summary>Waits for a call other than <paramref name="served"/>: spins, then parks. Null once disposed.</summary>
    private Call? NextCall(Call? served)
    {
        var spin = new SpinWait();
        while (!disposed)
        {
            var call = Volatile.Read(ref current);
            if (call != served)
                return call;
            if (spin.Count < SpinRounds)
                spin.SpinOnce(sleep1Threshold: -1);
            else
                Park(served);
        }
        return null;
    }

    private void Park(Call? served)
    {
        lock (gate)
        {
            Interlocked.Increment(ref parked);
            while (!disposed && Volatile.Read(ref current) == served)
                Monitor.Wait(gate);
            Interlocked.Decrement(ref parked);
        }
    }

    /// <summary>One <see cref="Run"/>: its own counters, so a worker that wakes late for a finished call
    /// finds no task left in it instead of taking one of the next call's.</summary>
    private sealed class Call
    {
        /// <summary>Ints between two range counters: one cache line, so threads taking from their own
        /// ranges do not contend.</summary>
        private const int CounterSpacing = 16;

        private readonly int tasks;
        private readonly int threads;

        /// <summary>At r·<see cref="CounterSpacing"/>: the next task of thread r's range not yet taken.</summary>
        private readonly int[] next;

        private Action<int>? body;
        private int unfinished;
        private int callerParked;
        private ExceptionDispatchInfo? error;

        public Call(int tasks, int threads, Action<int> body)
        {
            this.tasks = tasks;
            this.threads = threads;
            this.body = body;
            unfinished = tasks;
            next = new int[threads * CounterSpacing];
            for (int range = 1; range < threads; range++)
                next[range * CounterSpacing] = RangeStart(range);
        }

        public ExceptionDispatchInfo? Error => error;

        private int RangeStart(int range) => (int)((long)range * tasks / threads);

        /// <summary>Runs the tasks of <paramref name="thread"/>'s range, then whatever is left of the others'.</summary>
        public void Work(int thread)
        {
            for (int i = 0; i < threads; i++)
            {
                int range = (thread + i) % threads, end = RangeStart(range + 1);
                ref int counter = ref next[range * CounterSpacing];
                for (int t = Interlocked.Increment(ref counter) - 1; t < end; t = Interlocked.Increment(ref counter) - 1)
                    Execute(t);
            }
        }

        private void Execute(int task)
        {
            if (Volatile.Read(ref error) is null)
            {
                try
                {
                    body!(task);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref error, ExceptionDispatchInfo.Capture(e), null);
                }
            }
            // The decrement is a full fence, paired with the caller's in WaitUntilDone.
            if (Interlocked.Decrement(ref unfinished) == 0 && Volatile.Read(ref callerParked) != 0)
                lock (this) Monitor.Pulse(this);
        }

        /// <summary>Spins, then parks, until every task has finished; then lets go of the body (and what it
        /// captured) though workers may still hold this call.</summary>
        public void WaitUntilDone()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref unfinished) != 0 && spin.Count < SpinRounds)
                spin.SpinOnce(sleep1Threshold: -1);
            if (Volatile.Read(ref unfinished) != 0)
            {
                Interlocked.Exchange(ref callerParked, 1);
                lock (this)
                    while (Volatile.Read(ref unfinished) != 0)
                        Monitor.Wait(this);
            }
            body = null;
        }
    }
}
