using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Imaging;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// What a run leaves in its task folder to say what it was: <c>COMMAND_config.json</c>, the resolved config (file and
/// overrides together; it loads again with <c>--config</c>), and <c>COMMAND_run.json</c>, the command line, the program
/// version, the time, the device and the working folder (the log, <c>COMMAND.log</c>, is the command line's to write).
/// A resumed training run first compares its config with the saved one: a changed value that breaks exact
/// continuation (batch size, model shape, data, losses, seed, …) is refused, naming the key, unless
/// <paramref name="allowConfigChange"/>; the keys a stage lists as free (epochs, logging, sampling) may change.
/// </summary>
/// <param name="command">the stage's command name (<c>train-ldm</c>), the prefix of the record's files.</param>
/// <param name="arguments">the command line's arguments as given.</param>
public sealed class RunRecord(string command, IReadOnlyList<string> arguments, string version, bool allowConfigChange = false)
{
    /// <summary>Keys of every stage that change how long a run goes, what it logs or what it saves beside the
    /// training, never the trajectory of the steps: a resumed run may change them.</summary>
    public static IReadOnlyList<string> OutputKeys { get; } =
    [
        "train_params.ldm_epochs", "train_params.autoencoder_epochs", "train_params.checkpoint_steps",
        "train_params.autoencoder_img_save_steps", "train_params.ldm_log_steps", "train_params.num_samples",
        "train_params.num_grid_rows", "train_params.save_latents", "train_params.cf_guidance_scale",
        "train_params.ldm_ckpt_name", "train_params.vqvae_autoencoder_ckpt_name", "train_params.vae_autoencoder_ckpt_name",
        "train_params.vqvae_discriminator_ckpt_name", "train_params.vae_discriminator_ckpt_name",
        "train_params.vqvae_latent_dir_name", "train_params.vae_latent_dir_name",
    ];

    public string Command => command;

    public static string ConfigFile(TrainingRun run, string command) => run.File($"{command}_config.json");

    public static string RecordFile(TrainingRun run, string command) => run.File($"{command}_run.json");

    public static string LogFile(string taskFolder, string command) => Path.Combine(taskFolder, $"{command}.log");

    /// <summary>The command line as a shell would take it back (arguments with spaces or quotes quoted).</summary>
    public static string CommandLine(IEnumerable<string> arguments) =>
        "ildm " + string.Join(' ', arguments.Select(a => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_.,:=/+@%".Contains(c))
            ? a : "'" + a.Replace("'", "'\\''") + "'"));

    /// <summary>Called by a stage once its own checks have passed: on <paramref name="resume"/> compares the config with
    /// the saved one (keys under <paramref name="freeOnResume"/> excepted), then writes the record.</summary>
    public void Begin(TrainingRun run, bool resume, IReadOnlyCollection<string> freeOnResume)
    {
        run.EnsureTaskFolder();
        var config = ConfigWriter.ToJson(run.Config);
        if (resume) CompareWithResumed(run, config, freeOnResume);
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        WriteText(ConfigFile(run, command), config.ToJsonString(options));
        var record = new JsonObject
        {
            ["command"] = command,
            ["command_line"] = CommandLine(arguments),
            ["arguments"] = new JsonArray([.. arguments.Select(a => (JsonNode?)JsonValue.Create(a))]),
            ["version"] = version,
            ["started_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            ["working_directory"] = Environment.CurrentDirectory,
            ["config_source"] = run.Config.Source,
            ["resolved_config"] = Path.GetFileName(ConfigFile(run, command)),
            ["device"] = run.Device.Name,
            ["log"] = Path.GetFileName(LogFile(run.TaskFolder, command)),
        };
        WriteText(RecordFile(run, command), record.ToJsonString(options));
    }

    private void CompareWithResumed(TrainingRun run, JsonObject config, IReadOnlyCollection<string> freeOnResume)
    {
        string saved = ConfigFile(run, command);
        if (!File.Exists(saved))
        {
            run.Log.WriteLine($"warning: {saved} is missing (a run of an older ildm, or the original's checkpoints): "
                + "the resumed run's config cannot be compared with this one");
            return;
        }
        var before = Flatten(JsonNode.Parse(File.ReadAllText(saved)));
        var now = Flatten(config);
        var changed = before.Keys.Union(now.Keys)
            .Where(k => !freeOnResume.Any(free => k == free || k.StartsWith(free + ".", StringComparison.Ordinal)))
            .Where(k => before.GetValueOrDefault(k) != now.GetValueOrDefault(k))
            .Order(StringComparer.Ordinal).ToList();
        if (changed.Count == 0) return;
        string changes = string.Join("; ", changed.Select(k => $"{k} was {before.GetValueOrDefault(k) ?? "absent"}, "
            + $"now {now.GetValueOrDefault(k) ?? "absent"}"));
        if (allowConfigChange)
        {
            run.Log.WriteLine($"warning: --allow-config-change: resuming with a changed config ({changes}); the run will not equal "
                + "an uninterrupted one");
            return;
        }
        throw new ConfigException(string.Join(", ", changed),
            $"changed since the run being resumed ({changes}): the resumed run would not continue it exactly. Resume with the "
            + "earlier values, pass --allow-config-change to continue anyway, or --overwrite to start over", saved);
    }

    /// <summary>Leaf values by dotted key (<c>ldm_params.condition_config.condition_types</c>); a list is one value.</summary>
    private static Dictionary<string, string> Flatten(JsonNode? node)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        void Walk(JsonNode? n, string key)
        {
            if (n is JsonObject o)
                foreach (var (name, child) in o) Walk(child, key.Length == 0 ? name : $"{key}.{name}");
            else values[key] = n?.ToJsonString() ?? "null";
        }
        Walk(node, "");
        return values;
    }

    private static void WriteText(string path, string text) =>
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream);
            writer.Write(text);
        });
}
