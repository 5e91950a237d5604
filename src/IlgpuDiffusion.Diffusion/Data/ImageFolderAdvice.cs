namespace IlgpuDiffusion.Diffusion.Data;

/// <summary>
/// What the errors of an <see cref="ImageFolderDataset"/> tell the user, as fits the command that reads the folder: the
/// setting that names the folder, and what to do about a file or folder that the scan cannot read.
/// </summary>
/// <param name="FolderSetting">The config key or option that names the folder.</param>
/// <param name="Unreadable">The advice added to the error of an unreadable file or folder.</param>
public sealed record ImageFolderAdvice(string FolderSetting, string Unreadable)
{
    /// <summary>A training stage's data: dataset_params.im_path, whose skip_unreadable_images leaves such files out.</summary>
    public static ImageFolderAdvice TrainingConfig { get; } =
        new("dataset_params.im_path", "dataset_params.skip_unreadable_images skips it");

    /// <summary>A folder named by <paramref name="option"/> of a command without a config (evaluate): every image in it is
    /// read, so an unreadable one has to be repaired or moved out.</summary>
    public static ImageFolderAdvice Option(string option) =>
        new(option, $"every image under {option} is read: repair it or move it out of the folder");
}
