namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>A request, from a signal (Ctrl-C, SIGTERM), that training stop after its current optimiser step: the trainer
/// then saves its checkpoints and training state as it does at an epoch's end and throws <see cref="TrainingInterruptedException"/>.
/// Set from the signal's thread, read by the training loop.</summary>
public sealed class StopRequest
{
    private volatile string? _signal;

    /// <summary>The signal that asked (SIGINT, SIGTERM), or null.</summary>
    public string? Signal => _signal;

    public bool IsRequested => _signal != null;

    public void Request(string signal) => Interlocked.CompareExchange(ref _signal, signal, null);
}

/// <summary>Training stopped on a <see cref="StopRequest"/> after saving step <see cref="Step"/>; --resume continues it.</summary>
public sealed class TrainingInterruptedException(long step, string signal, string taskFolder)
    : Exception($"stopped by {signal} after step {step}; checkpoints and training state saved in {taskFolder}")
{
    public long Step { get; } = step;
    public string Signal { get; } = signal;
}
