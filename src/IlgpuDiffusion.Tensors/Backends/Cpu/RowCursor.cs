namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>Offsets of the rows <c>row, row + 1, …</c> of a row-major index space of <c>rank</c> outer dimensions under
/// up to three operands' strides (unused ones default to 0), advanced like an odometer: small rows (a 7×7 plane, a
/// head of 16) made the division per row of <see cref="Dim6.Offset"/> a visible share of strided copies.</summary>
internal struct RowCursor
{
    private Dim6 index;
    private readonly Dim6 shape, strides0, strides1, strides2;
    private readonly int rank;

    public int Offset0, Offset1, Offset2;

    public RowCursor(int row, in Dim6 shape, int rank, in Dim6 strides0, in Dim6 strides1, in Dim6 strides2 = default)
    {
        this.shape = shape;
        this.rank = rank;
        this.strides0 = strides0;
        this.strides1 = strides1;
        this.strides2 = strides2;
        index = new Dim6();
        for (int d = rank - 1; d >= 0; d--)
        {
            int i = row % shape[d];
            row /= shape[d];
            index[d] = i;
            Offset0 += i * strides0[d];
            Offset1 += i * strides1[d];
            Offset2 += i * strides2[d];
        }
    }

    public void Next()
    {
        for (int d = rank - 1; d >= 0; d--)
        {
            Offset0 += strides0[d];
            Offset1 += strides1[d];
            Offset2 += strides2[d];
            int i = index[d] + 1;
            if (i < shape[d]) { index[d] = i; return; }
            index[d] = 0;
            Offset0 -= i * strides0[d];
            Offset1 -= i * strides1[d];
            Offset2 -= i * strides2[d];
        }
    }
}
