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
            Assert.True(error < 1e-2, $"{op} on {device}: gradient of input {k} differs from finite differences by {error:E2} (relative L2)");
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
        Assert.True(OpChecks.RelativeL2(y, expectedY) < 1e-6, $"{op} output on {device} differs from cpu: {OpChecks.RelativeL2(y, expectedY):E2}");
        for (int k = 0; k < grads.Length; k++)
            Assert.True(OpChecks.RelativeL2(grads[k], expectedGrads[k]) < 1e-6, $"{op} gradient {k} on {device} differs from cpu: {OpChecks.RelativeL2(grads[k], expectedGrads[k]):E2}");
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
}
