namespace IlgpuDiffusion.Tensors.Backends.Ilgpu;
// TEMPORARY stub (not committed)
public sealed class IlgpuBackend
{
    public static IReadOnlyList<DeviceInfo> Enumerate() => [];
    public static IBackend Create(string kind, int index) => throw new ArgumentException("no " + kind);
}
