using System.Reflection;

namespace IlgpuDiffusion.Tensors.Tests.IO;

/// <summary>Locations of the weight files the IO tests read, and scratch folders they write to.</summary>
internal static class IoTestFiles
{
    public static string Fixture(string relativePath) => Fixtures.Path(relativePath);

    /// <summary>The NuGet packages folder, recorded at build time by the test project.</summary>
    public static string NuGetPackageRoot => typeof(IoTestFiles).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "NuGetPackageRoot").Value
        ?? throw new InvalidOperationException("NuGetPackageRoot was not recorded at build time");

    /// <summary>A fresh empty folder, deleted when disposed.</summary>
    public sealed class ScratchFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("ilgpudiffusion-io-").FullName;
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
