using System.Runtime.InteropServices;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>
/// The MPI C functions the data-parallel path needs, bound to MPICH's ABI (libmpich.so.12: MPICH, and the
/// implementations of the MPICH ABI initiative such as Intel MPI and Cray MPICH). Handles are MPICH's 32-bit
/// integers and the constants below are MPICH's mpi.h values; Open MPI's pointer handles are a different ABI and
/// are not supported. Only called after <see cref="EnsureLoaded"/>, so a single process never loads the library.
/// </summary>
internal static unsafe partial class MpiNative
{
    public const string Library = "libmpich.so.12";

    public const int Success = 0;
    public const int CommWorld = 0x44000000;
    public const int FloatType = 0x4c00040a;
    public const int DoubleType = 0x4c00080b;
    public const int ByteType = 0x4c00010d;
    public const int UnsignedLongLongType = 0x4c000819;
    public const int Sum = 0x58000003;
    public const int ErrorsReturn = 0x54000001;
    public const int CommTypeShared = 1;
    public const int InfoNull = 0x1c000000;
    public const int ThreadSerialized = 2;
    public const int MaxErrorString = 512;
    public static readonly IntPtr InPlace = new(-1);
    public static readonly IntPtr StatusIgnore = new(1);

    /// <summary>Loads the library, or fails saying what to install.</summary>
    public static void EnsureLoaded()
    {
        if (NativeLibrary.TryLoad(Library, typeof(MpiNative).Assembly, null, out _)) return;
        throw new DistributedException($"this process was started as part of an MPI job, but the MPI library {Library} was not found: "
            + "install MPICH (Debian/Ubuntu: apt-get install mpich) or another MPICH-ABI MPI (Intel MPI, Cray MPICH); "
            + "Open MPI's ABI is not supported. Run without mpiexec (or with --distributed off) for one process");
    }

    [LibraryImport(Library)] public static partial int MPI_Initialized(out int flag);
    [LibraryImport(Library)] public static partial int MPI_Init_thread(IntPtr argc, IntPtr argv, int required, out int provided);
    [LibraryImport(Library)] public static partial int MPI_Finalize();
    [LibraryImport(Library)] public static partial int MPI_Abort(int comm, int errorCode);
    [LibraryImport(Library)] public static partial int MPI_Comm_rank(int comm, out int rank);
    [LibraryImport(Library)] public static partial int MPI_Comm_size(int comm, out int size);
    [LibraryImport(Library)] public static partial int MPI_Comm_set_errhandler(int comm, int errhandler);
    [LibraryImport(Library)] public static partial int MPI_Comm_split_type(int comm, int splitType, int key, int info, out int newComm);
    [LibraryImport(Library)] public static partial int MPI_Comm_free(ref int comm);
    [LibraryImport(Library)] public static partial int MPI_Error_string(int errorCode, byte* text, out int length);
    [LibraryImport(Library)] public static partial int MPI_Test(ref int request, out int flag, IntPtr status);

    [LibraryImport(Library)]
    public static partial int MPI_Iallreduce(IntPtr send, IntPtr receive, int count, int datatype, int op, int comm, out int request);

    [LibraryImport(Library)]
    public static partial int MPI_Ibcast(IntPtr buffer, int count, int datatype, int root, int comm, out int request);

    [LibraryImport(Library)]
    public static partial int MPI_Iallgather(IntPtr send, int sendCount, int sendType, IntPtr receive, int receiveCount, int receiveType,
        int comm, out int request);

    /// <summary>MPI's text for an error code.</summary>
    public static string ErrorText(int code)
    {
        var text = stackalloc byte[MaxErrorString];
        return MPI_Error_string(code, text, out int length) == Success
            ? System.Text.Encoding.ASCII.GetString(text, length).Trim()
            : $"MPI error {code}";
    }
}
