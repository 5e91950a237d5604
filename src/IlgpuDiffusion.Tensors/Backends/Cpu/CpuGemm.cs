namespace IlgpuDiffusion.Tensors.Backends.Cpu;
// TEMPORARY naive stand-in until the packed kernel lands (not committed).
internal static class CpuGemm
{
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, float[] a, int aOffset, int lda, int strideA, float[] b, int bOffset, int ldb, int strideB, float beta, float[] c, int cOffset, int ldc, int strideC, int batch)
    {
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    float s = 0;
                    for (int p = 0; p < k; p++)
                        s += a[aOffset + bi * strideA + (transA ? p * lda + i : i * lda + p)] * b[bOffset + bi * strideB + (transB ? j * ldb + p : p * ldb + j)];
                    int ci = cOffset + bi * strideC + i * ldc + j;
                    c[ci] = alpha * s + (beta == 0 ? 0 : beta * c[ci]);
                }
    }
}
