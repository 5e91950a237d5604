namespace IlgpuDiffusion.Tensors.Backends.Cpu;

/// <summary>Splits [0, count) into contiguous ranges run by <see cref="CpuWorkers"/>, or runs inline when the
/// work is too small to pay for a thread hand-off. The ranges depend only on count and cost, never on timing,
/// so results do not depend on which thread ran what.</summary>
internal static class CpuParallel
{
    /// <param name="costPerItem">rough number of scalar operations per item, to decide whether to split.</param>
    public static void For(int count, long costPerItem, Action<int, int> body)
    {
        const long minimumWorkPerTask = 32 * 1024;
        int tasks = (int)Math.Min(Environment.ProcessorCount * 4L, count * Math.Max(1, costPerItem) / minimumWorkPerTask);
        if (tasks <= 1) { body(0, count); return; }
        int chunk = (count + tasks - 1) / tasks;
        CpuWorkers.Shared.Run(tasks, t =>
        {
            int start = t * chunk, end = Math.Min(count, start + chunk);
            if (start < end) body(start, end);
        });
    }
}
