using System.Diagnostics;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// A one-line progress display for long work: step/total, a bar, it/s, ETA and the latest losses.
/// Redraws in place on a terminal (at most a few times a second); when output is redirected it prints a
/// plain line every <see cref="RedirectedEvery"/> steps instead, so logs stay readable.
/// </summary>
public sealed class ProgressBar(string label, long total, long start = 0, TextWriter? output = null)
{
    private readonly long _start = start;
    private readonly TextWriter _out = output ?? Console.Out;
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private readonly bool _interactive = output == null && !Console.IsOutputRedirected;
    private long _lastDrawMs = -1000;
    private long _done;

    public int RedirectedEvery { get; init; } = 50;

    public void Report(long done, IReadOnlyDictionary<string, double>? losses = null)
    {
        _done = done;
        long ms = _watch.ElapsedMilliseconds;
        bool last = done >= total;
        if (_interactive ? ms - _lastDrawMs < 200 && !last : done % RedirectedEvery != 0 && !last) return;
        _lastDrawMs = ms;
        double rate = (done - _start) / Math.Max(_watch.Elapsed.TotalSeconds, 1e-9);
        var eta = rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : TimeSpan.Zero;
        const int width = 24;
        int filled = total > 0 ? (int)(width * Math.Min(1.0, (double)done / total)) : width;
        string lossText = losses == null ? "" : "  " + string.Join(" ", losses.Select(kv => $"{kv.Key} {kv.Value:G4}"));
        string bar = new string('#', filled) + new string('.', width - filled);
        string line = $"{label} {done}/{total} [{bar}] {Rate(rate)} ETA {eta:hh\\:mm\\:ss}{lossText}";
        if (_interactive) _out.Write("\r" + line + "\u001b[K" + (last ? Environment.NewLine : ""));
        else _out.WriteLine(line);
    }

    /// <summary>Steps per second, or seconds per step when a step takes longer than a second (slow devices would show 0.00 it/s).</summary>
    internal static string Rate(double stepsPerSecond) => stepsPerSecond switch
    {
        >= 1 => $"{stepsPerSecond:F2} it/s",
        > 0 => $"{1 / stepsPerSecond:F1} s/it",
        _ => "- it/s",
    };

    /// <summary>Ends the line (if drawing in place) and reports the elapsed time.</summary>
    public TimeSpan Finish()
    {
        if (_interactive && _done < total) _out.WriteLine();
        return _watch.Elapsed;
    }
}
