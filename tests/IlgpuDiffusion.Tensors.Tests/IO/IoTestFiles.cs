using System.Reflection;

namespace IlgpuDiffusion.Tensors.Tests.IO;

/// <summary>Locations of the weight files the IO tests read, and scratch folders they write to.</summary>
internal static class IoTestFiles
{
    /// <summary>A file under tests/fixtures, found by walking up from the test binaries so the
    /// fixtures need not be copied into the output folder.</summary>
    public static string Fixture(string relativePath)
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "tests", "fixtures", relativePath);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"fixture tests/fixtures/{relativePath} not found above {AppContext.BaseDirectory}");
    }

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
