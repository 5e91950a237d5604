using System.CommandLine;
using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Distributed;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>The trainers' options for data-parallel jobs over MPI (<c>mpiexec -n N dotnet ildm.dll train-…</c>).</summary>
internal sealed class DistributedOptions
{
    public readonly Option<string> Mode = new("--distributed")
    {
        Description = "auto: run as one rank of an MPI job when launched by mpiexec/srun (PMI variables set), else alone; "
            + "mpi: always start MPI; off: never",
        DefaultValueFactory = _ => "auto",
    };
    public readonly Option<string> Backend = new("--dist-backend")
    {
        Description = "how gradients are summed over the ranks: auto (NCCL on CUDA when libnccl.so.2 is found, else mpi), "
            + "mpi (through host memory), nccl",
        DefaultValueFactory = _ => "auto",
    };
    public readonly Option<double> Timeout = new("--dist-timeout")
    {
        Description = "seconds a collective may wait for the other ranks before the job stops with an error",
        DefaultValueFactory = _ => 300,
    };
    public readonly Option<int> CheckSteps = new("--dist-check-steps")
    {
        Description = "compare the ranks' parameter digests every K steps (0: never)",
        DefaultValueFactory = _ => 100,
    };

    public Option[] All => [Mode, Backend, Timeout, CheckSteps];

    public DistributedOptions()
    {
        Mode.AcceptOnlyFromAmong("auto", "mpi", "off");
        Backend.AcceptOnlyFromAmong("auto", "mpi", "nccl");
    }
}

/// <summary>
/// This process's part in a stage: alone, or one rank of an MPI job. Started before the device is opened (the local rank
/// picks the GPU); a rank that fails aborts the whole job so that the others stop at once rather than at their timeout.
/// </summary>
internal sealed class DistributedJob : IDisposable
{
    private readonly IProcessGroup _group;
    private DataParallel? _parallel;

    private DistributedJob(IProcessGroup group) => _group = group;

    public int Size => _group.Size;

    /// <summary>Rank 0 logs; the other ranks' progress and log lines are dropped (their errors still reach stderr).</summary>
    public TextWriter Log => _group.Rank == 0 ? Console.Out : TextWriter.Null;

    /// <summary>Joins the MPI job when <paramref name="options"/> say so; stages without them refuse to run as several ranks.</summary>
    public static DistributedJob Start(ParseResult parse, DistributedOptions? options, string command)
    {
        if (options == null)
        {
            if (int.TryParse(Environment.GetEnvironmentVariable("PMI_SIZE"), out int ranks) && ranks > 1)
                throw new ArgumentException($"`ildm {command}` runs as one process; of the stages only train-autoencoder and train-ldm run "
                    + "as the ranks of an MPI job: run it without mpiexec/srun");
            return new DistributedJob(SingleProcess.Instance);
        }
        string mode = parse.GetValue(options.Mode)!;
        double timeout = parse.GetValue(options.Timeout);
        if (timeout <= 0) throw new ArgumentException($"--dist-timeout must be a positive number of seconds, got {timeout}");
        bool mpi = mode == "mpi" || (mode == "auto" && MpiProcessGroup.LaunchedByMpi());
        return new DistributedJob(mpi ? MpiProcessGroup.Start(TimeSpan.FromSeconds(timeout)) : SingleProcess.Instance);
    }

    /// <summary>The device of this rank: an unnumbered GPU kind (or auto) becomes the GPU of this rank's local number.</summary>
    public string DeviceName(string requested)
    {
        string name = requested.Trim().ToLowerInvariant();
        if (_group.LocalSize == 1 || name is not ("auto" or "cuda" or "opencl")) return requested;
        var present = Device.Available().Select(d => d.Name).ToList();
        string kind = name != "auto" ? name : present.Any(n => n.StartsWith("cuda:", StringComparison.Ordinal)) ? "cuda"
            : present.Any(n => n.StartsWith("opencl:", StringComparison.Ordinal)) ? "opencl" : "cpu";
        int count = present.Count(n => n.StartsWith(kind + ":", StringComparison.Ordinal));
        return count == 0 ? kind : $"{kind}:{_group.LocalRank % count}";
    }

    /// <summary>The trainers' view of the job on <paramref name="device"/>, with its gradient reducer; logged by rank 0.</summary>
    public DataParallel Parallel(ParseResult parse, DistributedOptions? options, Device device)
    {
        if (_group is not MpiProcessGroup mpi || options == null) return DataParallel.Single;
        int checkSteps = parse.GetValue(options.CheckSteps);
        if (checkSteps < 0) throw new ArgumentException($"--dist-check-steps must be 0 (never) or a number of steps, got {checkSteps}");
        var reducer = GradientReducers.Create(parse.GetValue(options.Backend)!, mpi, device, out string? note);
        _parallel = new DataParallel(mpi, reducer, checkSteps);
        if (note != null) Log.WriteLine($"note: {note}");
        Log.WriteLine($"data-parallel: {mpi.Size} ranks ({mpi.LocalSize} on this machine), rank 0 on {device.Name}; global batch split "
            + $"over the ranks; gradients summed by {reducer.Name}; collective timeout {mpi.Timeout.TotalSeconds:0.#} s");
        return _parallel;
    }

    /// <summary>The stage's exit code; a failed rank of a job of several ends the whole job here.</summary>
    public int Finish(int code)
    {
        if (code != 0 && _group.Size > 1) Abort(code);
        if (_parallel != null) Log.WriteLine(_parallel.Summary());
        return code;
    }

    /// <summary>Stops every rank (mpiexec ends the job); does not return.</summary>
    public void Abort(int code)
    {
        Console.Error.WriteLine($"error: rank {_group.Rank} of {_group.Size} failed; stopping the job");
        _group.Abort(code);
    }

    public void Dispose()
    {
        if (_parallel != null) _parallel.Dispose();
        else _group.Dispose();
    }
}
