using System.Runtime.InteropServices;
using IlgpuDiffusion.Diffusion.Training;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM (what timeout, Slurm and container runtimes send) during training: the first asks the
/// trainer to stop after its current step, save and say how to resume; a second exits at once, as an unhandled
/// signal would (exit code 128 + the signal's number).
/// </summary>
internal sealed class StopSignals : IDisposable
{
    public const int SigintExitCode = 130, SigtermExitCode = 143;

    private readonly PosixSignalRegistration[] _registrations;
    private readonly StopRequest _stop;
    private readonly Action _beforeExit;
    private int _count;

    /// <param name="beforeExit">runs before a second signal ends the process (flushes the log).</param>
    public StopSignals(StopRequest stop, Action beforeExit)
    {
        _stop = stop;
        _beforeExit = beforeExit;
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ];
    }

    public static int ExitCode(string? signal) => signal == nameof(PosixSignal.SIGTERM) ? SigtermExitCode : SigintExitCode;

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        string signal = context.Signal.ToString();
        if (Interlocked.Increment(ref _count) == 1)
        {
            _stop.Request(signal);
            Console.Error.WriteLine($"{signal}: stopping after the current step to save checkpoints and training state "
                + "(Ctrl-C again to quit at once, losing the steps since the last checkpoint)");
            return;
        }
        Console.Error.WriteLine($"{signal} again: stopped at once; the steps since the last checkpoint are lost");
        _beforeExit();
        Environment.Exit(ExitCode(signal));
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
    }
}
