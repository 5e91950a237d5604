using System.Diagnostics;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>Times an action on a device: warm-up calls, then repeats until enough time has passed, and
/// reports the median (device work is synchronised inside each timed call). On a profiled device the
/// profile restarts after the warm-up, so it leaves out kernel loading.</summary>
internal static class Timing
{
    /// <summary>How many timed runs the last <see cref="MedianMilliseconds"/> made.</summary>
    public static int LastRuns { get; private set; }

    /// <summary>Median time the host spent queuing one run of the last <see cref="MedianMilliseconds"/> (before
    /// waiting for the device): when it is close to the total, host overhead bounds the step, not the device.</summary>
    public static double LastHostMilliseconds { get; private set; }

    public static double MedianMilliseconds(Device device, Action action, int warmup = 2, double minSeconds = 1.0, int maxRuns = 50)
    {
        for (int i = 0; i < warmup; i++) { action(); device.Backend.Synchronize(); }
        (device.Backend as ProfilingBackend)?.Reset();
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
        LastRuns = times.Count;
        LastHostMilliseconds = hostTimes[hostTimes.Count / 2];
        return times[times.Count / 2];
    }

    public static void Report(string device, string what, double ms, string rate, string? target = null) =>
        Console.WriteLine($"{device,-10} {what,-44} {ms,10:F3} ms  {rate,-28}{(target != null ? "  " + target : "")}");
}
