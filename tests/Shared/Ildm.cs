using System.Diagnostics;

namespace IlgpuDiffusion.TestSupport;

/// <summary>Runs the built <c>ildm</c> executable in a child process and captures its output.</summary>
public static class Ildm
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
    }

    public static Result Run(params string[] args) => RunIn(Environment.CurrentDirectory, args);

    public static Result RunIn(string workingDirectory, params string[] args) =>
        RunWithin(TimeSpan.FromMinutes(10), workingDirectory, args);

    /// <summary>As <see cref="RunIn"/>, killed after <paramref name="limit"/> with a <see cref="TimeoutException"/> (a hang
    /// fails the test).</summary>
    public static Result RunWithin(TimeSpan limit, string workingDirectory, params string[] args) =>
        RunThrough([], limit, workingDirectory, args);

    /// <summary>As <see cref="RunWithin"/>, started by <paramref name="launcher"/> (a program and its options that runs
    /// the command line after them, as setpriv does); none: directly.</summary>
    public static Result RunThrough(string[] launcher, TimeSpan limit, string workingDirectory, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "ildm.dll");
        var info = new ProcessStartInfo(launcher.Length > 0 ? launcher[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        if (launcher.Length > 0) foreach (var a in launcher[1..].Append("dotnet")) info.ArgumentList.Add(a);
        info.ArgumentList.Add(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(true);
            throw new TimeoutException($"ildm {string.Join(' ', args)} did not finish in {limit.TotalSeconds} s");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
