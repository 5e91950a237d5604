namespace IlgpuDiffusion.TestSupport;

/// <summary>Named pipes (FIFOs), for tests of readers that must never open one: the open would block forever.</summary>
public static class NamedPipe
{
    /// <summary>Makes a FIFO at <paramref name="path"/> with mkfifo; skips the test where the system has none.</summary>
    public static void Make(string path)
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "named pipes are made with mkfifo");
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
    }
}
