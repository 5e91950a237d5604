namespace IlgpuDiffusion.Diffusion.Tests;

public class ProjectTests
{
    [Fact]
    public void Fixtures_are_found() => Assert.True(File.Exists(Path.Combine(Fixtures.ParityFolder, "manifest.json")));
}
