using System.CommandLine;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>Options shared by several commands.</summary>
internal static class CommonOptions
{
    public static Option<string> Device() => new("--device")
    {
        Description = "cpu | cuda[:N] | opencl[:N] | ilgpu-cpu | auto (cuda, then opencl, then cpu)",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>An exception's message for a user: without .NET's "(Parameter 'name')" and "Actual value was …" additions,
    /// which name our code's variables, not anything the user wrote.</summary>
    public static string UserMessage(Exception e)
    {
        string message = e.Message;
        if (e is ArgumentException { ParamName: { } name }) message = message.Replace($" (Parameter '{name}')", "");
        int actual = message.IndexOf(Environment.NewLine + "Actual value was ", StringComparison.Ordinal);
        return e is ArgumentOutOfRangeException && actual >= 0 ? message[..actual] : message;
    }

    /// <summary>Opens the device, turning an unknown name into a one-line error instead of a stack trace. ilgpu-cpu gets
    /// a note: a new user who picks it for training would otherwise wait an hour for a few steps.</summary>
    public static Device? Open(string name)
    {
        try
        {
            var device = Tensors.Device.Get(name);
            if (device.Name.StartsWith("ilgpu-cpu", StringComparison.Ordinal))
                Console.Error.WriteLine("note: ilgpu-cpu runs the GPU kernels on ILGPU's CPU accelerator to test them: it is 100 to "
                    + "1000 times slower than --device cpu, for tiny shapes only");
            return device;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return null;
        }
    }
}
