using System.Diagnostics;
using System.Globalization;

namespace IlgpuDiffusion.Tensors.Backends;

/// <summary>
/// An executor that runs another and times each primitive call, waiting for the device after every call so
/// each time is that call's own (launch and host overhead included). Calls are grouped by primitive and, for
/// GEMM, attention and convolution lowering, by shape. Opened by <see cref="Device.Get"/> for a name with the
/// suffix <c>+profile</c> (<c>cuda+profile</c>); <c>ildm bench --profile</c> prints <see cref="Report"/>.
/// The waits make the whole run slower than an unprofiled one: read the shares, not the sum.
/// </summary>
public sealed class ProfilingBackend(IBackend executor) : IBackend
{
    private readonly Dictionary<string, (int Calls, long Ticks)> _entries = new();

    public IBackend Inner => executor;
    public DeviceInfo Info => executor.Info;
    public bool PrefersFusedAttention => executor.PrefersFusedAttention;

    public void Dispose() => executor.Dispose();

    private static long Begin() => Stopwatch.GetTimestamp();

    private void End(string key, long start)
    {
        executor.Synchronize();
        long ticks = Stopwatch.GetTimestamp() - start;
        lock (_entries)
        {
            _entries.TryGetValue(key, out var entry);
            _entries[key] = (entry.Calls + 1, entry.Ticks + ticks);
        }
    }

    /// <summary>The <paramref name="top"/> most expensive groups since the last reset: calls and milliseconds per
    /// run (the caller says how many runs the profile covers) and share of the total.</summary>
    public string Report(int top = 20, int runs = 1)
    {
        lock (_entries)
        {
            double total = _entries.Values.Sum(e => e.Ticks), msPerTick = 1000.0 / Stopwatch.Frequency / runs;
            var lines = _entries.OrderByDescending(e => e.Value.Ticks).Take(top).Select(e => string.Create(CultureInfo.InvariantCulture,
                $"  {e.Key,-58} {e.Value.Calls / (double)runs,8:F1} calls {e.Value.Ticks * msPerTick,9:F3} ms "
                    + $"{100 * e.Value.Ticks / Math.Max(total, 1),6:F1} %"));
            return string.Join(Environment.NewLine, lines.Prepend(string.Create(CultureInfo.InvariantCulture,
                $"  profile per run ({runs} runs): {_entries.Values.Sum(e => e.Calls) / (double)runs:F0} calls, "
                    + $"{total * msPerTick:F2} ms with a wait after each")));
        }
    }

    public void Reset()
    {
        lock (_entries) _entries.Clear();
    }

    /// <summary>The op's type name, with its type arguments (CompareOp&lt;IsLess&gt;).</summary>
    private static string OpName<TOp>()
    {
        var type = typeof(TOp);
        if (!type.IsGenericType) return type.Name;
        return $"{type.Name[..type.Name.IndexOf('`')]}<{string.Join(", ", type.GetGenericArguments().Select(a => a.Name))}>";
    }

    public DeviceBuffer Allocate(int length) => executor.Allocate(length);

    public void Upload(ReadOnlySpan<float> source, BufferView destination)
    {
        long t = Begin(); executor.Upload(source, destination); End("Upload", t);
    }

    public void Download(BufferView source, Span<float> destination)
    {
        long t = Begin(); executor.Download(source, destination); End("Download", t);
    }

    public void Synchronize() => executor.Synchronize();

    public void Fill(BufferView destination, int count, float value)
    {
        long t = Begin(); executor.Fill(destination, count, value); End("Fill", t);
    }

    public void StridedCopy(BufferView source, Dim6 sourceStrides, BufferView destination, Dim6 destinationStrides, Dim6 shape, int rank)
    {
        long t = Begin();
        executor.StridedCopy(source, sourceStrides, destination, destinationStrides, shape, rank);
        End($"StridedCopy rank {rank}", t);
    }

    public void Unary<TOp>(BufferView x, BufferView y, int n, float a, float b) where TOp : struct, IUnaryOp
    {
        long t = Begin(); executor.Unary<TOp>(x, y, n, a, b); End($"Unary {OpName<TOp>()}", t);
    }

    public void UnaryBackward<TOp>(BufferView x, BufferView y, BufferView dy, BufferView dx, int n, float a, float b)
        where TOp : struct, IUnaryOp
    {
        long t = Begin(); executor.UnaryBackward<TOp>(x, y, dy, dx, n, a, b); End($"UnaryBackward {OpName<TOp>()}", t);
    }

    public void Binary<TOp>(BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides, BufferView y, Dim6 shape, int rank)
        where TOp : struct, IBinaryOp
    {
        long t = Begin(); executor.Binary<TOp>(a, aStrides, b, bStrides, y, shape, rank); End($"Binary {OpName<TOp>()} rank {rank}", t);
    }

    public void Where(BufferView condition, Dim6 conditionStrides, BufferView a, Dim6 aStrides, BufferView b, Dim6 bStrides,
        BufferView y, Dim6 shape, int rank)
    {
        long t = Begin();
        executor.Where(condition, conditionStrides, a, aStrides, b, bStrides, y, shape, rank);
        End($"Where rank {rank}", t);
    }

    public void Reduce<TOp>(BufferView x, BufferView y, int outer, int r, int inner) where TOp : struct, IReduceOp
    {
        long t = Begin(); executor.Reduce<TOp>(x, y, outer, r, inner); End($"Reduce {OpName<TOp>()} {outer}x{r}x{inner}", t);
    }

    public void ArgReduce(BufferView x, BufferView indices, int outer, int r, int inner, bool min)
    {
        long t = Begin(); executor.ArgReduce(x, indices, outer, r, inner, min); End("ArgReduce", t);
    }

    public void Gemm(in GemmArgs args)
    {
        long t = Begin(); executor.Gemm(args);
        End($"Gemm {args.M}x{args.N}x{args.K}{(args.Batch > 1 ? $" b{args.Batch}" : "")}"
            + $"{(args.A.Transposed ? " Aᵀ" : "")}{(args.B.Transposed ? " Bᵀ" : "")}", t);
    }

    public void Softmax(BufferView x, BufferView y, int rows, int cols)
    {
        long t = Begin(); executor.Softmax(x, y, rows, cols); End("Softmax", t);
    }

    public void SoftmaxBackward(BufferView y, BufferView dy, BufferView dx, int rows, int cols)
    {
        long t = Begin(); executor.SoftmaxBackward(y, dy, dx, rows, cols); End("SoftmaxBackward", t);
    }

    public void GroupNormForward(BufferView x, BufferView gamma, BufferView beta, BufferView y, BufferView mean, BufferView rstd,
        int batch, int channels, int spatial, int groups, float eps)
    {
        long t = Begin();
        executor.GroupNormForward(x, gamma, beta, y, mean, rstd, batch, channels, spatial, groups, eps);
        End("GroupNormForward", t);
    }

    public void GroupNormBackward(BufferView x, BufferView gamma, BufferView mean, BufferView rstd, BufferView dy,
        BufferView dx, BufferView dgamma, BufferView dbeta, int batch, int channels, int spatial, int groups)
    {
        long t = Begin();
        executor.GroupNormBackward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, batch, channels, spatial, groups);
        End("GroupNormBackward", t);
    }

    public void AttentionForward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView logSumExp,
        int bh, int lq, int lk, int d, float scale)
    {
        long t = Begin();
        executor.AttentionForward(q, k, v, o, logSumExp, bh, lq, lk, d, scale);
        End($"AttentionForward bh{bh} {lq}x{lk} d{d}", t);
    }

    public void AttentionBackward(BufferView q, BufferView k, BufferView v, BufferView o, BufferView dO, BufferView logSumExp,
        BufferView dq, BufferView dk, BufferView dv, int bh, int lq, int lk, int d, float scale)
    {
        long t = Begin();
        executor.AttentionBackward(q, k, v, o, dO, logSumExp, dq, dk, dv, bh, lq, lk, d, scale);
        End($"AttentionBackward bh{bh} {lq}x{lk} d{d}", t);
    }

    public void IndexSelect(BufferView x, BufferView idx, BufferView y, int outer, int n, int k, int inner)
    {
        long t = Begin(); executor.IndexSelect(x, idx, y, outer, n, k, inner); End("IndexSelect", t);
    }

    public void IndexAdd(BufferView dy, BufferView idx, BufferView dx, int outer, int n, int k, int inner)
    {
        long t = Begin(); executor.IndexAdd(dy, idx, dx, outer, n, k, inner); End("IndexAdd", t);
    }

    public void Im2Col(BufferView x, BufferView cols, in ConvGeometry g)
    {
        long t = Begin(); executor.Im2Col(x, cols, g); End($"Im2Col {g.Channels}ch {g.Height}² k{g.KH}s{g.StrideH}", t);
    }

    public bool GathersConvPatches => executor.GathersConvPatches;

    public void ConvGemm(BufferView a, BufferView x, BufferView c, int m, in ConvGeometry g, bool transposed)
    {
        long t = Begin(); executor.ConvGemm(a, x, c, m, g, transposed);
        int columns = g.Batch * g.ColumnCols;
        End($"ConvGemm {m}x{(transposed ? $"{g.ColumnRows}x{columns} Pᵀ" : $"{columns}x{g.ColumnRows}")} {g.Channels}ch {g.Height}² "
            + $"k{g.KH}s{g.StrideH}", t);
    }

    public void Col2Im(BufferView cols, BufferView dx, in ConvGeometry g)
    {
        long t = Begin(); executor.Col2Im(cols, dx, g); End($"Col2Im {g.Channels}ch {g.Height}² k{g.KH}s{g.StrideH}", t);
    }

    public void AdamStep(BufferView p, BufferView g, BufferView m, BufferView v, int n,
        float beta1, float beta2, float eps, float weightDecay, float stepSize, float sqrtBiasCorrection2)
    {
        long t = Begin();
        executor.AdamStep(p, g, m, v, n, beta1, beta2, eps, weightDecay, stepSize, sqrtBiasCorrection2);
        End("AdamStep", t);
    }

    public void FillRandom(BufferView y, int n, ulong seed, ulong counterBase, bool normal)
    {
        long t = Begin(); executor.FillRandom(y, n, seed, counterBase, normal); End("FillRandom", t);
    }
}
