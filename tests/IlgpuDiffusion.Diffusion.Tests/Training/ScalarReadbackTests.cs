using IlgpuDiffusion.Diffusion.Training;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests.Training;

public class ScalarReadbackTests
{
    [SkippableTheory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void One_read_back_gives_the_values_of_separate_reads_by_name_in_order(string device)
    {
        var d = TestDevices.Open(device);
        using var scope = new TensorScope();
        var x = Tensor.Randn([3, 4], new Generator(5), d);
        x.RequiresGrad = true;
        var scalars = new Dictionary<string, Tensor>
        {
            ["mse"] = Tensor.MseLoss(x, Tensor.Zeros([3, 4], d)),
            ["sum"] = x.Sum(),
            ["one_element"] = Tensor.FromArray([0.25f], [1], d),
            ["nan"] = Tensor.FromArray([float.NaN], [1], d),
            ["weighted"] = x.Square().Mean().Mul(0.2f),
        };
        var read = ScalarReadback.Read(scalars);
        Assert.Equal(scalars.Keys, read.Keys);
        foreach (var (name, tensor) in scalars) Assert.Equal((double)tensor.Item(), read[name]);
        Assert.Empty(ScalarReadback.Read(new Dictionary<string, Tensor>()));
    }
}
