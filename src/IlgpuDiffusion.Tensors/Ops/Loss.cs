namespace IlgpuDiffusion.Tensors;

public sealed partial class Tensor
{
    /// <summary>Mean squared error, mean((input − target)²), as torch.nn.functional.mse_loss.</summary>
    public static Tensor MseLoss(Tensor input, Tensor target)
    {
        CheckSameShape(input, target, "mse_loss");
        return input.Sub(target).Square().Mean();
    }
}
