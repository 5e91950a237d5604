namespace IlgpuDiffusion.Cli.Bench;

/// <summary>This process's resident memory as Linux reports it in /proc/self/status (VmRSS, and its high-water mark VmHWM,
/// which /proc/self/clear_refs lowers to the current size), the same measure scripts/torch_reference_bench.py takes of
/// PyTorch. Null where there is no such file (not Linux).</summary>
internal static class ProcessMemory
{
    public static long? ResidentBytes => StatusBytes("VmRSS");

    public static long? PeakResidentBytes => StatusBytes("VmHWM");

    /// <summary>Lowers the peak resident size to the current one (Linux 4.0+); false where that is not possible.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long? StatusBytes(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(key.Length + 1).Trim().TrimEnd("kB").Trim()) * 1024;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }
}
