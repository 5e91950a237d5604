using System.Text;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>A forged ONNX graph given to the ResNet18 builder is an error naming the file and the node, not a crash.</summary>
public class ResNet18GraphTests
{
    [Theory]
    [InlineData("Softmax", "has op Softmax")]
    [InlineData("Conv", "input 1 is not a float initializer")]
    public void A_forged_graph_names_the_file_and_node(string op, string expected)
    {
        using var folder = new TempFolder();
        string path = folder.File("forged.onnx");
        // ModelProto.graph (7) { node (1) { input "x", input "w", output "y", name "n", op_type }, input (11) { name "x" } }
        var node = Concat(Field(1, "x"), Field(1, "w"), Field(2, "y"), Field(3, "n"), Field(4, op));
        File.WriteAllBytes(path, Field(7, Concat(Field(1, node), Field(11, Field(1, "x")))));

        var error = Assert.Throws<InvalidDataException>(() => new ResNet18Lpips(Device.Cpu, path));

        Assert.Contains(path, error.Message);
        Assert.Contains("'n'", error.Message);
        Assert.Contains(expected, error.Message);
    }

    // a length-delimited protocol-buffer field; every message here is shorter than 128 bytes
    private static byte[] Field(int field, byte[] value) => [(byte)(field << 3 | 2), (byte)value.Length, .. value];

    private static byte[] Field(int field, string value) => Field(field, Encoding.UTF8.GetBytes(value));

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
