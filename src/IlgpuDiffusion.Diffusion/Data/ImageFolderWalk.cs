namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>The files of an image folder tree: every folder is visited once, by its resolved path, so a symbolic link to
/// a folder already seen (a loop, or a second name for a folder) adds nothing; folders that cannot be listed are
/// reported with the reason instead of ending the walk.</summary>
internal static class ImageFolderWalk
{
    public static (List<string> Files, List<(string Folder, string Problem)> Unreadable) Files(string root, string[] extensions)
    {
        var files = new List<string>();
        var unreadable = new List<(string, string)>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.TryPop(out var folder))
        {
            try
            {
                if (!visited.Add(Resolved(folder))) continue;
                foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos())
                {
                    if (entry is DirectoryInfo) pending.Push(entry.FullName);
                    else if (extensions.Contains(entry.Extension, StringComparer.OrdinalIgnoreCase)) files.Add(entry.FullName);
                }
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                unreadable.Add((folder, e.Message));
            }
        }
        return (files, unreadable);
    }

    /// <summary>The folder's path with every symbolic link along it resolved (the parent first, then the folder); a
    /// link loop is an <see cref="IOException"/> from the system.</summary>
    private static string Resolved(string folder)
    {
        var info = new DirectoryInfo(Path.GetFullPath(folder));
        string parent = info.Parent is { } p ? Resolved(p.FullName) : info.FullName;
        string path = info.Parent is null ? parent : Path.Combine(parent, info.Name);
        // the final target is no link, but folders along its path may be
        return new DirectoryInfo(path).LinkTarget is null
            ? path
            : Resolved(new DirectoryInfo(path).ResolveLinkTarget(returnFinalTarget: true)!.FullName);
    }
}
