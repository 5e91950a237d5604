namespace IlgpuDiffusion.Tensors;

/// <summary>
/// The record an op leaves on its output: the op's name, its inputs, and its backward rule, which maps
/// the gradient of the output to one gradient per input (null where an input needs none).
/// </summary>
internal sealed class GradNode(string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
{
    public string Op { get; } = op;
    public Tensor[] Inputs { get; } = inputs;
    public Func<Tensor, Tensor?[]> Backward { get; } = backward;
}
