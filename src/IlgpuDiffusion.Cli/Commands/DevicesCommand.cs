using System.CommandLine;
using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Cli.Commands;

internal static class DevicesCommand
{
    public static Command Create()
    {
        var command = new Command("devices", "List the devices this machine offers: name, description, memory, compute units");
        command.SetAction(_ =>
        {
            Console.WriteLine($"{"name",-12} {"memory",10} {"units",6}  description");
            foreach (var d in Device.Available())
                Console.WriteLine($"{d.Name,-12} {d.MemoryBytes / (1024.0 * 1024 * 1024),8:F1} GiB {d.ComputeUnits,6}  {d.Description}");
            return 0;
        });
        return command;
    }
}
