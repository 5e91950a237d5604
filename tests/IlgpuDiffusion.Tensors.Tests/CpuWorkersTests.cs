using IlgpuDiffusion.Tensors.Backends.Cpu;

namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>The managed executor's persistent threads. Each test runs under a time limit, so a deadlock fails
/// it instead of hanging the run; tests that need workers to take part use a pool of their own, since the
/// shared one may be busy with another test class (and then runs inline).</summary>
public class CpuWorkersTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    private static Task WithinLimit(Action test) => Task.Run(test).WaitAsync(Limit);

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1_000_000)]
    [InlineData(7, 100_000)]
    [InlineData(1000, 1)]          // too little work: inline
    [InlineData(1000, 1000)]
    [InlineData(4097, 64)]
    [InlineData(100_003, 16)]
    public Task Every_index_is_covered_exactly_once(int count, long costPerItem) => WithinLimit(() =>
    {
        var hits = new int[count];
        CpuParallel.For(count, costPerItem, (start, end) =>
        {
            for (int i = start; i < end; i++)
                Interlocked.Increment(ref hits[i]);
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    });

    [Fact]
    public Task Every_task_runs_exactly_once_on_a_pool_of_three_workers() => WithinLimit(() =>
    {
        using var pool = new CpuWorkers(3);
        foreach (int tasks in new[] { 0, 1, 2, 3, 4, 5, 17, 64, 1000 })
        {
            var hits = new int[tasks];
            pool.Run(tasks, t => Interlocked.Increment(ref hits[t]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    });

    [Fact]
    public Task Workers_run_tasks_alongside_the_caller_and_wake_after_parking() => WithinLimit(() =>
    {
        using var pool = new CpuWorkers(1);
        for (int round = 0; round < 2; round++)
        {
            // Each task waits for the other, so both can only finish if two threads run them at once.
            using var bothRunning = new Barrier(2);
            var names = new string?[2];
            var met = new bool[2];
            pool.Run(2, t =>
            {
                names[t] = Thread.CurrentThread.Name;
                met[t] = bothRunning.SignalAndWait(Limit / 4);
            });
            Assert.Equal([true, true], met);
            Assert.Equal("ildm-cpu-worker-1", names[1]); // the second half of the tasks is the worker's range
            Thread.Sleep(200); // far past the spin: the worker parks before the second round
        }
    });

    [Fact]
    public Task A_thread_whose_range_is_done_takes_tasks_from_another() => WithinLimit(() =>
    {
        using var pool = new CpuWorkers(1);
        using var lastTaskDone = new ManualResetEventSlim();
        var threadOf = new int[4];
        bool releasedInTime = true;
        pool.Run(4, t =>
        {
            threadOf[t] = Environment.CurrentManagedThreadId;
            // The worker's range is [2, 4); its first task holds it until task 3 is done, which only the
            // caller, once through [0, 2), can take.
            if (t == 2 && Thread.CurrentThread.Name == "ildm-cpu-worker-1")
                releasedInTime = lastTaskDone.Wait(Limit / 4);
            if (t == 3)
                lastTaskDone.Set();
        });
        Assert.True(releasedInTime);
        Assert.Equal(threadOf[0], threadOf[3]);
    });

    [Fact]
    public Task First_exception_reaches_the_caller_with_its_stack_trace() => WithinLimit(() =>
    {
        using var pool = new CpuWorkers(2);
        var e = Assert.Throws<InvalidOperationException>(() => pool.Run(64, t =>
        {
            if (t % 10 == 5)
                FailAt(t);
        }));
        Assert.StartsWith("task ", e.Message);
        Assert.Contains(nameof(FailAt), e.StackTrace);
        var hits = new int[64];
        pool.Run(64, t => Interlocked.Increment(ref hits[t]));
        Assert.All(hits, h => Assert.Equal(1, h));
    });

    private static void FailAt(int task) => throw new InvalidOperationException($"task {task}");

    [Fact]
    public Task Nested_calls_run_inline_on_the_calling_thread() => WithinLimit(() =>
    {
        using var pool = new CpuWorkers(2);
        const int outer = 16, inner = 8;
        var hits = new int[outer * inner];
        var foreignThreads = 0;
        pool.Run(outer, o =>
        {
            int thread = Environment.CurrentManagedThreadId;
            pool.Run(inner, i =>
            {
                Interlocked.Increment(ref hits[o * inner + i]);
                Thread.Sleep(1); // long enough that idle workers would join in if the call were handed to them
                if (Environment.CurrentManagedThreadId != thread)
                    Interlocked.Increment(ref foreignThreads);
            });
        });
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.Equal(0, foreignThreads);
    });

    [Fact]
    public Task Concurrent_callers_all_get_correct_results() => WithinLimit(() =>
    {
        const int callers = 4, calls = 200, count = 50_000;
        var failures = new int[callers];
        var threads = Enumerable.Range(0, callers).Select(caller => new Thread(() =>
        {
            var values = new float[count];
            for (int call = 0; call < calls; call++)
            {
                float value = caller * 1000 + call;
                CpuParallel.For(count, 64, (start, end) => values.AsSpan(start, end - start).Fill(value));
                if (values.Any(v => v != value))
                    failures[caller]++;
            }
        })).ToArray();
        foreach (var thread in threads)
            thread.Start();
        foreach (var thread in threads)
            thread.Join();
        Assert.Equal(new int[callers], failures);
    });
}
