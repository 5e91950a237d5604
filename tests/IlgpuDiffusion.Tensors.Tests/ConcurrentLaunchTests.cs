using System.Collections.Concurrent;
using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>Several threads launching the same kernels on one device, as tests running in parallel do: every result
/// must be right. ILGPU's OpenCL launcher sets the arguments on a kernel object all launches share (the backend
/// serialises launches there), and split matrix products on every ILGPU device share one scratch buffer.</summary>
public class ConcurrentLaunchTests
{
    private const int Threads = 4;

    /// <summary>Runs <paramref name="work"/>(thread) on <see cref="Threads"/> threads at once; the failures they report.</summary>
    private static List<string> OnThreads(Action<int, ConcurrentBag<string>> work)
    {
        var failures = new ConcurrentBag<string>();
        using var start = new Barrier(Threads);
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                work(t, failures);
            }
            catch (Exception e)
            {
                failures.Add($"thread {t}: {e}");
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return [.. failures];
    }

    private static BufferView Upload(IBackend backend, float[] values)
    {
        var view = new BufferView(backend.Allocate(values.Length), 0);
        backend.Upload(values, view);
        return view;
    }

    private static void Release(params BufferView[] views)
    {
        foreach (var view in views) view.Buffer.Release();
    }

    private static float[] Download(IBackend backend, BufferView view, int length)
    {
        var values = new float[length];
        backend.Download(view, values);
        return values;
    }

    /// <summary>Each thread launches y = a·x + b with its own buffers and scalars (integers: exact in float) and reads
    /// every result back. Without serialisation rusticl gave wrong results in 3–4 of 600 such launches.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void One_kernel_launched_from_several_threads_gives_every_result(string device)
    {
        var backend = TestDevices.Open(device).Backend;
        int launches = device == "ilgpu-cpu" ? 40 : 150; // a few milliseconds per launch there
        const int n = 1024;
        var failures = OnThreads((thread, failed) =>
        {
            var x = Enumerable.Range(0, n).Select(i => (float)(thread * 10_000 + i)).ToArray();
            var xView = Upload(backend, x);
            var yView = Upload(backend, new float[n]);
            for (int launch = 0; launch < launches; launch++)
            {
                float a = launch + 1, b = thread;
                backend.Unary<AffineOp>(xView, yView, n, a, b);
                var y = Download(backend, yView, n);
                int wrong = Enumerable.Range(0, n).Count(i => y[i] != a * x[i] + b);
                if (wrong > 0) failed.Add($"thread {thread}, launch {launch}: {wrong} of {n} results wrong");
            }
            Release(xView, yView);
        });
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>One C tile and a long K: each product is split over several groups whose partials go through the
    /// backend's scratch buffer, two launches that no other thread's launches may come between.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Split_matrix_products_from_several_threads_give_every_result(string device)
    {
        var backend = TestDevices.Open(device).Backend;
        const int m = 8, n = 8, k = 2048, products = 20;
        var failures = OnThreads((thread, failed) =>
        {
            var random = new Random(thread);
            var a = Enumerable.Range(0, m * k).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
            var b = Enumerable.Range(0, k * n).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
            var expected = new double[m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++)
                        expected[i * n + j] += (double)a[i * k + p] * b[p * n + j];
            var c = Upload(backend, new float[m * n]);
            var args = new GemmArgs(m, n, k, new(Upload(backend, a), k), new(Upload(backend, b), n), new(c, n));
            for (int product = 0; product < products; product++)
            {
                backend.Gemm(args);
                var actual = Download(backend, c, m * n);
                int wrong = Enumerable.Range(0, m * n)
                    .Count(i => Math.Abs(actual[i] - expected[i]) > 1e-4 * Math.Max(1, Math.Abs(expected[i])));
                if (wrong > 0) failed.Add($"thread {thread}, product {product}: {wrong} of {m * n} elements wrong");
            }
            Release(args.A.View, args.B.View, c);
        });
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
