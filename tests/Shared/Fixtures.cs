namespace IlgpuDiffusion.TestSupport;

/// <summary>Files of the repository (tests/fixtures, configs), found by walking up from the test binaries (no copies in bin/).</summary>
public static class Fixtures
{
    public static string Path(string relativePath) => RepoFile(System.IO.Path.Combine("tests", "fixtures", relativePath));

    /// <summary>A file or folder by its path from the repository root, e.g. <c>configs/mnist.json</c>.</summary>
    public static string RepoFile(string relativePath)
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = System.IO.Path.Combine(folder.FullName, relativePath);
            if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"{relativePath} not found above {AppContext.BaseDirectory}");
    }

    public static string ParityFolder => Path("parity");
}
