using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors.Tests;

public class OpTests
{
    [SkippableTheory]
    [MemberData(nameof(OpCatalogue.NamesOnDevices), MemberType = typeof(OpCatalogue))]
    public void Gradient_matches_central_finite_differences(string op, string device)
    {
        var dev = TestDevices.Open(device);
        var c = OpCatalogue.Get(op);
        var inputs = OpCatalogue.Inputs(c);
        var (_, grads) = OpChecks.Run(c, inputs, dev);

        const float step = 1e-3f;
        for (int k = 0; k < inputs.Length; k++)
        {
            var numeric = new float[inputs[k].Length];
            for (int i = 0; i < numeric.Length; i++)
            {
                float original = inputs[k][i];
                inputs[k][i] = original + step;
                double plus = OpChecks.Loss(c, inputs, dev);
                inputs[k][i] = original - step;
                double minus = OpChecks.Loss(c, inputs, dev);
                inputs[k][i] = original;
                numeric[i] = (float)((plus - minus) / (2 * step));
            }
            double error = OpChecks.RelativeL2(grads[k], numeric);
            Assert.True(error < 1e-2,
                $"{op} on {device}: gradient of input {k} differs from finite differences by {error:E2} (relative L2)");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(OpCatalogue.NamesOnDevices), MemberType = typeof(OpCatalogue))]
    public void Executor_matches_cpu_within_float32_rounding(string op, string device)
    {
        Skip.If(device == "cpu", "cpu is the reference executor");
        var dev = TestDevices.Open(device);
        var c = OpCatalogue.Get(op);
        var inputs = OpCatalogue.Inputs(c);
        var (expectedY, expectedGrads) = OpChecks.Run(c, inputs, Device.Cpu);
        var (y, grads) = OpChecks.Run(c, inputs, dev);
        double outputError = OpChecks.RelativeL2(y, expectedY);
        Assert.True(outputError < 1e-6, $"{op} output on {device} differs from cpu: {outputError:E2}");
        for (int k = 0; k < grads.Length; k++)
        {
            double gradientError = OpChecks.RelativeL2(grads[k], expectedGrads[k]);
            Assert.True(gradientError < 1e-6, $"{op} gradient {k} on {device} differs from cpu: {gradientError:E2}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Index_select_out_of_range_is_an_error_on_cpu_and_NaN_rows_elsewhere(string device)
    {
        var dev = TestDevices.Open(device);
        using var scope = new TensorScope();
        var x = Tensor.FromArray(new[] { 1f, 2, 3, 4, 5, 6 }, [3, 2], dev);
        x.RequiresGrad = true;
        var index = Tensor.FromArray(new[] { 1, 3 }, [2], dev);
        if (dev.IsCpu)
        {
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(0, index));
            Assert.Equal("index", error.ParamName);
            Assert.Contains("index_select: index 3 is out of range for dimension 0 of size 3", error.Message);
            return;
        }
        var y = x.IndexSelect(0, index);
        var values = y.ToArray();
        Assert.Equal([3f, 4f], values[..2]);
        Assert.All(values[2..], v => Assert.True(float.IsNaN(v)));
        y.Sum().Backward();
        Assert.Equal([0f, 0f, 1f, 1f, 0f, 0f], x.Grad!.ToArray());
    }

    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Comparisons_give_float_masks_without_gradient_and_NaN_compares_false(string device)
    {
        var dev = TestDevices.Open(device);
        using var scope = new TensorScope();
        var a = Tensor.FromArray(new[] { 1f, 2, float.NaN, 0f, -0f, float.PositiveInfinity, 3, float.NaN }, [8], dev);
        var b = Tensor.FromArray(new[] { 1f, 3, float.NaN, -0f, float.NaN, float.PositiveInfinity, 2, 1 }, [8], dev);
        a.RequiresGrad = true;
        var comparisons = new (Func<Tensor, Tensor, Tensor> Compare, float[] Expected)[]
        {
            ((x, y) => x.Eq(y), [1, 0, 0, 1, 0, 1, 0, 0]),
            ((x, y) => x.Ne(y), [0, 1, 1, 0, 1, 0, 1, 1]),
            ((x, y) => x.Gt(y), [0, 0, 0, 0, 0, 0, 1, 0]),
            ((x, y) => x.Ge(y), [1, 0, 0, 1, 0, 1, 1, 0]),
            ((x, y) => x.Lt(y), [0, 1, 0, 0, 0, 0, 0, 0]),
            ((x, y) => x.Le(y), [1, 1, 0, 1, 0, 1, 0, 0]),
        };
        foreach (var (compare, expected) in comparisons)
        {
            var mask = compare(a, b);
            Assert.Equal(DType.Float32, mask.DType);
            Assert.False(mask.RequiresGrad);
            Assert.Equal(expected, mask.ToArray());
        }
    }

    /// <summary>The executor primitive with its output over an operand (rows long enough for the cpu executor's
    /// vector loop and a tail), and a NaN or −0 condition: NaN selects a, −0 selects b.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Where_writes_over_an_operand_and_a_NaN_condition_selects_a(string device)
    {
        var dev = TestDevices.Open(device);
        using var scope = new TensorScope();
        const int n = 2 * 67;
        float[] conditions = [float.NaN, -0f, 0f, -2f, 1f];
        var condition = Enumerable.Range(0, n).Select(i => conditions[i % conditions.Length]).ToArray();
        var a = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        var b = Enumerable.Range(0, n).Select(i => -1f - i).ToArray();
        var expected = Enumerable.Range(0, n).Select(i => condition[i] != 0f ? a[i] : b[i]).ToArray();
        Tensor c = Tensor.FromArray(condition, [2, n / 2], dev), x = Tensor.FromArray(a, [2, n / 2], dev);
        Tensor y = Tensor.FromArray(b, [2, n / 2], dev);
        Dim6 shape = Dim6.From([2, n / 2]), strides = Dim6.From([n / 2, 1]);

        dev.Backend.Where(c.View, strides, x.View, strides, y.View, strides, y.View, shape, 2);
        Assert.Equal(expected, y.ToArray());
        y = Tensor.FromArray(b, [2, n / 2], dev);
        dev.Backend.Where(c.View, strides, x.View, strides, y.View, strides, x.View, shape, 2);
        Assert.Equal(expected, x.ToArray());
    }

    /// <summary>Leaves of <paramref name="shapes"/> with standard normal values.</summary>
    private static Tensor[] Leaves(Generator gen, Device device, params int[][] shapes) => shapes.Select(shape =>
    {
        var t = Tensor.Randn(shape, gen, device);
        t.RequiresGrad = true;
        return t;
    }).ToArray();

    private static void Close(Tensor actual, Tensor expected, string what, double tolerance = 1e-5)
    {
        double error = OpChecks.RelativeL2(actual.ToArray(), expected.ToArray());
        Assert.True(error < tolerance, $"{what}: relative L2 {error:E2}");
    }

    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Conv2d_over_column_chunks_and_row_bands_equals_unfold_and_matmul(string device)
    {
        var dev = TestDevices.Open(device);
        using var scope = new TensorScope();
        var gen = new Generator(3);
        // six 40×40 images in two chunks of whole images; one 160×160 image (k4 s2: 512 × 80·80 columns) in row bands
        foreach (var (xShape, wShape, stride, padding) in new[] { ([6, 16, 40, 40], new[] { 4, 16, 3, 3 }, 1, 1),
            (new[] { 1, 32, 160, 160 }, new[] { 8, 32, 4, 4 }, 2, 1) })
        {
            var (x, w, b) = (Leaves(gen, dev, xShape)[0], Leaves(gen, dev, wShape)[0], Leaves(gen, dev, [wShape[0]])[0]);
            var y = Tensor.Conv2d(x, w, b, stride, padding);
            var r = Tensor.Randn(y.Shape.ToArray(), gen, dev);
            (y * r).Sum().Backward();
            var (dx, dw, db) = (x.Grad!, w.Grad!, b.Grad!);
            foreach (var t in new[] { x, w, b }) t.Grad = null;

            var patches = Tensor.Unfold(x, wShape[2], wShape[3], stride, padding); // (B, C·KH·KW, OH·OW)
            var product = patches.Transpose(1, 2).Matmul(w.Reshape(wShape[0], -1).Transpose(0, 1)).Transpose(1, 2);
            var expected = (product + b.Reshape(1, wShape[0], 1)).Reshape(y.Shape.ToArray());
            (expected * r).Sum().Backward();

            Close(y, expected, $"conv2d {Tensor.ShapeString(xShape)} output");
            Close(dx, x.Grad!, "dx");
            Close(dw, w.Grad!, "dW");
            Close(db, b.Grad!, "db");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void Conv_transpose2d_over_row_bands_is_the_adjoint_of_conv2d(string device)
    {
        var dev = TestDevices.Open(device);
        using var scope = new TensorScope();
        var gen = new Generator(4);
        // <convT(x, W), r> = <x, conv2d(r, W)> for every W; one image's columns (16·4·4 × 96·96) need row bands
        var (x, w, r) = (Leaves(gen, dev, [1, 4, 96, 96])[0], Leaves(gen, dev, [4, 16, 4, 4])[0], Leaves(gen, dev, [1, 16, 192, 192])[0]);
        var transposed = (Tensor.ConvTranspose2d(x, w, null, stride: 2, padding: 1) * r).Sum();
        transposed.Backward();
        var (dx, dwTransposed) = (x.Grad!, w.Grad!);
        (x.Grad, w.Grad, r.Grad) = (null, null, null);
        var direct = (Tensor.Conv2d(r, w, null, stride: 2, padding: 1) * x).Sum();
        direct.Backward();

        Assert.True(Math.Abs(transposed.Item() - direct.Item()) < 1e-4 * Math.Abs(direct.Item()), "<convT(x), r> = <x, conv2d(r)>");
        using (Autograd.NoGrad()) Close(dx, Tensor.Conv2d(r, w, null, stride: 2, padding: 1), "dx of convT = conv2d of its gradient");
        Close(dwTransposed, w.Grad!, "dW");
        Close(r.Grad!, Tensor.ConvTranspose2d(x, w, null, stride: 2, padding: 1), "dr of conv2d = convT of its gradient");
    }
}
