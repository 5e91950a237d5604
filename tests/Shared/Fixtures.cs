namespace IlgpuDiffusion.TestSupport;

/// <summary>Files under tests/fixtures, found by walking up from the test binaries (no copies in bin/).</summary>
public static class Fixtures
{
    public static string Path(string relativePath)
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = System.IO.Path.Combine(folder.FullName, "tests", "fixtures", relativePath);
            if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"fixture tests/fixtures/{relativePath} not found above {AppContext.BaseDirectory}");
    }

    public static string ParityFolder => Path("parity");
}
