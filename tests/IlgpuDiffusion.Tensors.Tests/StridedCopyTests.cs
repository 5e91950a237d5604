using IlgpuDiffusion.Tensors.Backends;
using IlgpuDiffusion.Tensors.Backends.Cpu;
using IlgpuDiffusion.Tensors.Tests.Ilgpu;

namespace IlgpuDiffusion.Tensors.Tests;

/// <summary>The executors' strided copy against a naive element-by-element copy, over the layouts the ops use: contiguous
/// rows (a head of 16, a 7×7 plane), transposes of the last two dimensions with and without whole 8×8 blocks (channels ↔
/// tokens), permutes of five dimensions, offsets into both buffers, and strided rows.</summary>
public sealed class StridedCopyTests(IlgpuCpuFixture ilgpu) : IClassFixture<IlgpuCpuFixture>
{
    private IBackend Backend(string executor) => executor == "cpu" ? new CpuBackend() : ilgpu.Backend;

    public static TheoryData<string, int[], int[], int[], int, int> Cases()
    {
        // shape, source strides, destination strides, source offset, destination offset
        (int[], int[], int[], int, int)[] layouts =
        [
            // (A, B, S) -> (B, A, S): the convolutions' channel-major swap, rows of a 7x7 plane
            ([3, 5, 49], [49, 147, 1], [245, 49, 1], 0, 0),
            // (B, C, L) -> (B, L, C): tokens to channels, 8x8 blocks with tails in both directions
            ([2, 49, 20], [980, 1, 49], [980, 20, 1], 0, 0),
            ([3, 16, 24], [384, 1, 16], [384, 24, 1], 5, 3),
            // a transpose too small for blocks
            ([4, 7, 5], [35, 1, 7], [35, 5, 1], 0, 0),
            // (B, L, 3, heads, D) -> (3, B, heads, L, D): attention's packed projections, heads of 16
            ([2, 9, 3, 4, 16], [1728, 192, 64, 16, 1], [576, 64, 16, 1152, 1], 0, 0),
            // strided rows on both sides
            ([5, 4], [1, 5], [8, 2], 0, 1),
        ];
        var cases = new TheoryData<string, int[], int[], int[], int, int>();
        foreach (var executor in new[] { "cpu", "ilgpu-cpu" })
            foreach (var (shape, source, destination, sourceOffset, destinationOffset) in layouts)
                cases.Add(executor, shape, source, destination, sourceOffset, destinationOffset);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Strided_copy_moves_every_element_to_its_place(string executor, int[] shape, int[] sourceStrides,
        int[] destinationStrides, int sourceOffset, int destinationOffset)
    {
        var backend = Backend(executor);
        int rank = shape.Length, count = shape.Aggregate(1, (a, b) => a * b);
        int sourceLength = sourceOffset + Extent(shape, sourceStrides);
        int destinationLength = destinationOffset + Extent(shape, destinationStrides) + 1;
        var sourceValues = Enumerable.Range(0, sourceLength).Select(i => (float)i).ToArray();
        var expected = Enumerable.Repeat(float.NaN, destinationLength).ToArray(); // untouched elements stay NaN
        var index = new int[rank];
        for (int n = 0; n < count; n++)
        {
            int from = sourceOffset, to = destinationOffset;
            for (int d = 0; d < rank; d++) (from, to) = (from + index[d] * sourceStrides[d], to + index[d] * destinationStrides[d]);
            expected[to] = sourceValues[from];
            for (int d = rank - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
        }

        var source = new BufferView(backend.Allocate(sourceLength), 0);
        backend.Upload(sourceValues, source);
        var destination = new BufferView(backend.Allocate(destinationLength), 0);
        backend.Upload(Enumerable.Repeat(float.NaN, destinationLength).ToArray(), destination);
        backend.StridedCopy(source.At(sourceOffset), Dim6.From(sourceStrides), destination.At(destinationOffset),
            Dim6.From(destinationStrides), Dim6.From(shape), rank);
        var actual = new float[destinationLength];
        backend.Download(destination, actual);
        Assert.Equal(expected, actual);
    }

    /// <summary>Elements from the first to the last the strides reach.</summary>
    private static int Extent(int[] shape, int[] strides) => shape.Select((n, d) => (n - 1) * strides[d]).Sum() + 1;
}
