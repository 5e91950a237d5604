namespace IlgpuDiffusion.Tensors;

/// <summary>
/// The record an op leaves on its output: the op's name, its inputs, the tensors its backward rule reads (PyTorch's
/// save_for_backward), and the rule, which maps the gradient of the output to one gradient per input (null where an
/// input needs none). Inputs that are not saved serve only for their shapes and the graph's order.
/// </summary>
internal sealed class GradNode(string op, Tensor[] inputs, Tensor[] saved, Func<Tensor, Tensor?[]> backward)
{
    public string Op { get; } = op;
    public Tensor[] Inputs { get; } = inputs;
    public Tensor[] Saved { get; } = saved;
    public Func<Tensor, Tensor?[]> Backward { get; } = backward;
}
