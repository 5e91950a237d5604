namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>A fresh folder under the system temp folder, deleted at dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("ildm-test-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
