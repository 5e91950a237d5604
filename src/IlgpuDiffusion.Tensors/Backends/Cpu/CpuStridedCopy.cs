using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>
/// <see cref="IBackend.StridedCopy"/> on host arrays, with pointer loops: the layout changes around attention and
/// convolutions copy rows of 8 to 49 floats (a head, a 7×7 plane), where a span copy per row cost more than the row,
/// and transposes (channels ↔ tokens), which move 8×8 blocks with AVX instead of one element per strided access.
/// </summary>
internal static unsafe class CpuStridedCopy
{
    public static void Run(float[] source, int sourceOffset, in Dim6 sourceStrides, float[] destination, int destinationOffset,
        in Dim6 destinationStrides, in Dim6 shape, int rank)
    {
        for (int d = 0; d < rank; d++)
            if (shape[d] == 0) return;
        if (rank == 0) // a single element
        {
            destination[destinationOffset] = source[sourceOffset];
            return;
        }
        // the loops below do not check bounds: every element either side can touch must lie inside its array
        CheckExtent(source.Length, sourceOffset, sourceStrides, shape, rank, "source");
        CheckExtent(destination.Length, destinationOffset, destinationStrides, shape, rank, "destination");
        if (IsTranspose(sourceStrides, destinationStrides, shape, rank))
            Transposes(source, sourceOffset, sourceStrides, destination, destinationOffset, destinationStrides, shape, rank);
        else
            Rows(source, sourceOffset, sourceStrides, destination, destinationOffset, destinationStrides, shape, rank);
    }

    /// <summary>The last two dimensions swap which one is contiguous: each plate is a matrix transpose.</summary>
    private static bool IsTranspose(in Dim6 sourceStrides, in Dim6 destinationStrides, in Dim6 shape, int rank) =>
        rank >= 2 && destinationStrides[rank - 1] == 1 && sourceStrides[rank - 1] != 1 && sourceStrides[rank - 2] == 1
        && shape[rank - 1] >= 8 && shape[rank - 2] >= 8;

    /// <summary>Row by row, stepping along the second-to-last dimension by its stride, so the odometer over the leading
    /// dimensions advances once per run of that dimension rather than once per row.</summary>
    private static void Rows(float[] source, int sourceOffset, Dim6 sourceStrides, float[] destination, int destinationOffset,
        Dim6 destinationStrides, Dim6 shape, int rank)
    {
        int inner = shape[rank - 1], si = sourceStrides[rank - 1], di = destinationStrides[rank - 1];
        if (rank == 1) // one row: split it over cores instead
        {
            CpuParallel.For(inner, 1, (start, end) =>
            {
                fixed (float* src = &source[sourceOffset], dst = &destination[destinationOffset])
                    Row(src + (nint)start * si, si, dst + (nint)start * di, di, end - start);
            });
            return;
        }
        int run = shape[rank - 2], outerRank = rank - 2, rows = run;
        int sr = sourceStrides[rank - 2], dr = destinationStrides[rank - 2];
        for (int d = 0; d < outerRank; d++) rows *= shape[d];
        CpuParallel.For(rows, inner, (start, end) =>
        {
            int j = start % run;
            var cursor = new RowCursor(start / run, shape, outerRank, sourceStrides, destinationStrides);
            fixed (float* src = &source[sourceOffset], dst = &destination[destinationOffset])
            {
                float* from = src + cursor.Offset0 + (nint)j * sr, to = dst + cursor.Offset1 + (nint)j * dr;
                for (int row = start; row < end; row++)
                {
                    Row(from, si, to, di, inner);
                    if (++j < run)
                    {
                        from += sr;
                        to += dr;
                        continue;
                    }
                    j = 0;
                    cursor.Next();
                    from = src + cursor.Offset0;
                    to = dst + cursor.Offset1;
                }
            }
        });
    }

    /// <summary>n floats, strided or not; short contiguous rows (a head of 8 or 16) by vector moves, where a block copy's
    /// call cost more than the row.</summary>
    private static void Row(float* from, int fromStride, float* to, int toStride, int n)
    {
        if (fromStride != 1 || toStride != 1)
        {
            for (int i = 0; i < n; i++) to[(nint)i * toStride] = from[(nint)i * fromStride];
            return;
        }
        if (n >= 64)
        {
            Unsafe.CopyBlockUnaligned(to, from, (uint)n * sizeof(float));
            return;
        }
        int k = 0;
        for (; k <= n - Vector256<float>.Count; k += Vector256<float>.Count) Vector256.Load(from + k).Store(to + k);
        for (; k < n; k++) to[k] = from[k];
    }

    /// <summary>Plates (the leading dimensions) of rows × cols: destination (i, j) at i·stride + j, source (i, j) at
    /// i + j·stride. Eight destination columns are eight contiguous source rows, packed as a GEMM panel is.</summary>
    private static void Transposes(float[] source, int sourceOffset, Dim6 sourceStrides, float[] destination,
        int destinationOffset, Dim6 destinationStrides, Dim6 shape, int rank)
    {
        int rows = shape[rank - 2], cols = shape[rank - 1], plates = 1;
        for (int d = 0; d < rank - 2; d++) plates *= shape[d];
        int sourceColumnStride = sourceStrides[rank - 1], destinationRowStride = destinationStrides[rank - 2];
        int blocks = (cols + 7) / 8;
        CpuParallel.For(plates * blocks, 8L * rows, (start, end) =>
        {
            fixed (float* src = &source[sourceOffset], dst = &destination[destinationOffset])
                for (int task = start; task < end; task++)
                {
                    int plate = task / blocks, j = task % blocks * 8;
                    var cursor = new RowCursor(plate, shape, rank - 2, sourceStrides, destinationStrides);
                    float* from = src + cursor.Offset0 + (nint)j * sourceColumnStride, to = dst + cursor.Offset1 + j;
                    if (j + 8 <= cols) CpuGemm.PackEightColumns(from, sourceColumnStride, to, destinationRowStride, rows);
                    else
                        for (int c = 0; c < cols - j; c++)
                            for (int i = 0; i < rows; i++)
                                to[(nint)i * destinationRowStride + c] = from[(nint)c * sourceColumnStride + i];
                }
        });
    }

    private static void CheckExtent(int length, int offset, in Dim6 strides, in Dim6 shape, int rank, string what)
    {
        long low = offset, high = offset;
        for (int d = 0; d < rank; d++)
        {
            long span = (long)(shape[d] - 1) * strides[d];
            if (span < 0) low += span;
            else high += span;
        }
        if (low < 0 || high >= length)
            throw new ArgumentOutOfRangeException(what, $"strided copy: elements {low}..{high} of an array of {length}");
    }
}
