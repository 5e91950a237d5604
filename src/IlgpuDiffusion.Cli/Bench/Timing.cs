using System.Diagnostics;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>One measured action: median wall time per run (device work included), median time the host spent
/// queuing a run before waiting for the device (close to the total: host overhead bounds the step), the
/// number of timed runs, and the peak device memory of tensors during them.</summary>
internal readonly record struct Measurement(double MedianMilliseconds, double HostMilliseconds, int Runs, long PeakBytes);

/// <summary>Times an action on a device: warm-up calls, then repeats until enough time has passed, and
/// reports the median (device work is synchronised inside each timed call). The allocator's peak and, on a
/// profiled device, the profile restart after the warm-up, so they leave out first allocations and kernel loading.</summary>
internal static class Timing
{
    public static double MedianMilliseconds(Device device, Action action, int warmup = 2, double minSeconds = 1.0, int maxRuns = 50) =>
        Measure(device, action, warmup, minSeconds, maxRuns).MedianMilliseconds;

    public static Measurement Measure(Device device, Action action, int warmup = 2, double minSeconds = 1.0, int maxRuns = 50)
    {
        for (int i = 0; i < warmup; i++) { action(); device.Backend.Synchronize(); }
        (device.Backend as ProfilingBackend)?.Reset();
        device.Allocator.ResetPeak();
        var times = new List<double>();
        var hostTimes = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 3 || (total.Elapsed.TotalSeconds < minSeconds && times.Count < maxRuns))
        {
            var watch = Stopwatch.StartNew();
            action();
            hostTimes.Add(watch.Elapsed.TotalMilliseconds);
            device.Backend.Synchronize();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        hostTimes.Sort();
        return new Measurement(times[times.Count / 2], hostTimes[hostTimes.Count / 2], times.Count, device.Allocator.PeakBytesInUse);
    }

    public static void Report(string device, string what, double ms, string rate, string? target = null) =>
        Console.WriteLine($"{device,-10} {what,-44} {ms,10:F3} ms  {rate,-28}{(target != null ? "  " + target : "")}");
}
