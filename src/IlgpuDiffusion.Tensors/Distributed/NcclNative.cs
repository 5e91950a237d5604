using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IlgpuDiffusion.Tensors.Distributed;

/// <summary>The NCCL 2 C functions (libnccl.so.2, which users bring: it is not packaged here) and the CUDA driver's
/// stream query. Loaded only when a CUDA job asks for NCCL.</summary>
internal static partial class NcclNative
{
    public const string Library = "libnccl.so.2";
    public const string MissingMessage = "NCCL (libnccl.so.2) was not found: install NCCL 2 or put its lib folder on LD_LIBRARY_PATH";
    public const int Success = 0;
    public const int Float32 = 7; // ncclFloat32
    public const int Sum = 0; // ncclSum
    public const int CudaSuccess = 0;
    public const int CudaNotReady = 600;

    /// <summary>ncclUniqueId: 128 opaque bytes (NCCL_UNIQUE_ID_BYTES), passed by value.</summary>
    [InlineArray(128)]
    public struct UniqueId
    {
        private byte _first;
    }

    public static bool TryLoad() => NativeLibrary.TryLoad(Library, typeof(NcclNative).Assembly, null, out _);

    public static void Check(int result, string call)
    {
        if (result != Success) throw new DistributedException($"{call} failed: {ErrorText(result)}");
    }

    public static string ErrorText(int result) => Marshal.PtrToStringAnsi(ncclGetErrorString(result)) ?? $"NCCL error {result}";

    [LibraryImport(Library)] public static partial int ncclGetUniqueId(out UniqueId id);
    [LibraryImport(Library)] public static partial int ncclCommInitRank(out IntPtr comm, int nranks, UniqueId id, int rank);
    [LibraryImport(Library)] public static partial int ncclGroupStart();
    [LibraryImport(Library)] public static partial int ncclGroupEnd();
    [LibraryImport(Library)] public static partial int ncclCommGetAsyncError(IntPtr comm, out int asyncError);
    [LibraryImport(Library)] public static partial int ncclCommAbort(IntPtr comm);
    [LibraryImport(Library)] public static partial int ncclCommDestroy(IntPtr comm);
    [LibraryImport(Library)] public static partial IntPtr ncclGetErrorString(int result);

    [LibraryImport(Library)]
    public static partial int ncclAllReduce(IntPtr send, IntPtr receive, nuint count, int datatype, int op, IntPtr comm, IntPtr stream);

    /// <summary>CUDA_SUCCESS when the stream's work is done, CUDA_ERROR_NOT_READY while it runs.</summary>
    [LibraryImport("libcuda.so.1")] public static partial int cuStreamQuery(IntPtr stream);
}
