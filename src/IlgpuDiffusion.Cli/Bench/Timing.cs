using System.Diagnostics;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Cli.Bench;

/// <summary>One measured action: median wall time per run (device work included), median time the host spent
/// queuing a run before waiting for the device (close to the total: host overhead bounds the step), the
/// number of timed runs, the peak device memory of tensors during them, the process's peak resident memory
/// during them (null where it cannot be measured), and each timed run's wall time in the order they ran.</summary>
internal readonly record struct Measurement(double MedianMilliseconds, double HostMilliseconds, int Runs, long PeakBytes,
    long? PeakResidentBytes, IReadOnlyList<double> Milliseconds);

/// <summary>Times an action on a device: warm-up calls, then at least <c>minRuns</c> timed calls, repeated until
/// enough time has passed, and reports the median (device work is synchronised inside each timed call). The allocator's
/// and the process's peaks and, on a profiled device, the profile restart after the warm-up, so they leave out first
/// allocations and kernel loading.</summary>
internal static class Timing
{
    public static double MedianMilliseconds(Device device, Action action, int warmup = 2, double minSeconds = 1.0, int maxRuns = 50) =>
        Measure(device, action, warmup, minSeconds, maxRuns).MedianMilliseconds;

    public static Measurement Measure(Device device, Action action, int warmup = 2, double minSeconds = 1.0, int maxRuns = 50,
        int minRuns = 3)
    {
        for (int i = 0; i < warmup; i++) { action(); device.Backend.Synchronize(); }
        (device.Backend as ProfilingBackend)?.Reset();
        device.Allocator.ResetPeak();
        bool residentPeakReset = ProcessMemory.ResetPeak();
        var times = new List<double>();
        var hostTimes = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < minRuns || (total.Elapsed.TotalSeconds < minSeconds && times.Count < maxRuns))
        {
            var watch = Stopwatch.StartNew();
            action();
            hostTimes.Add(watch.Elapsed.TotalMilliseconds);
            device.Backend.Synchronize();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        long? peakResident = residentPeakReset ? ProcessMemory.PeakResidentBytes : null;
        var inOrder = times.ToArray();
        times.Sort();
        hostTimes.Sort();
        return new Measurement(times[times.Count / 2], hostTimes[hostTimes.Count / 2], times.Count, device.Allocator.PeakBytesInUse,
            peakResident, inOrder);
    }

    public static void Report(string device, string what, double ms, string rate, string? target = null) =>
        Console.WriteLine($"{device,-10} {what,-44} {ms,10:F3} ms  {rate,-28}{(target != null ? "  " + target : "")}");
}
