using System.Diagnostics;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>Times an action on a device: warm-up calls, then repeats until enough time has passed, and
/// reports the median (device work is synchronised inside each timed call).</summary>
internal static class Timing
{
    public static double MedianMilliseconds(Device device, Action action, int warmup = 2, double minSeconds = 1.0, int maxRuns = 50)
    {
        for (int i = 0; i < warmup; i++) { action(); device.Backend.Synchronize(); }
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 3 || (total.Elapsed.TotalSeconds < minSeconds && times.Count < maxRuns))
        {
            var watch = Stopwatch.StartNew();
            action();
            device.Backend.Synchronize();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    public static void Report(string device, string what, double ms, string rate, string? target = null) =>
        Console.WriteLine($"{device,-10} {what,-44} {ms,10:F3} ms  {rate,-16}{(target != null ? "  " + target : "")}");
}
