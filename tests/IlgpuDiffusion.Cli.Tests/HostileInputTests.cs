using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using IlgpuDiffusion.Tensors.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace IlgpuDiffusion.Cli.Tests;

/// <summary>A tiny project whose autoencoder stage has run once (its checkpoints, training state and manifest are the
/// earlier results the hostile inputs must leave alone); each test works on a copy of it.</summary>
public sealed class TinyAutoencoderProject : IDisposable
{
    public TinyProject Project { get; } = new(images: 16);

    public TinyAutoencoderProject()
    {
        var result = Project.Run("train-autoencoder", "--set", "train_params:perceptual_weight=0");
        if (result.ExitCode != 0) throw new InvalidOperationException(result.ToString());
    }

    public void Dispose() => Project.Dispose();
}

/// <summary>
/// Hostile and broken inputs through the `ildm` executable, one per kind: each must end with a non-zero exit and a
/// one-line error that names the file, key or option, without a stack trace, leave every earlier file of the output
/// folder as it was, and finish within <see cref="Limit"/> (a hang fails the test).
/// </summary>
public sealed class HostileInputTests(TinyAutoencoderProject trained) : IClassFixture<TinyAutoencoderProject>, IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);
    private readonly string _folder = CopyOf(trained.Project.Folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Task => Path.Combine(_folder, "tiny");
    private string Data => Path.Combine(_folder, "hostile-data");
    private string File(string name) => Path.Combine(Task, name);

    /// <summary>Runs a stage on the copy (its config unless <paramref name="config"/>, the cpu, the copy as --output unless
    /// <paramref name="output"/>), started by <paramref name="launcher"/> when one is given.</summary>
    private Ildm.Result Stage(string command, string[] args, string? output = null, string[]? launcher = null, string? config = null) =>
        Ildm.RunThrough(launcher ?? [], Limit, _folder,
            [command, .. args, "--config", config ?? Path.Combine(_folder, "tiny.json"), "--device", "cpu", "--output", output ?? _folder]);

    /// <summary>Runs <paramref name="run"/> and checks the refusal: non-zero exit, one line on stderr naming every one of
    /// <paramref name="named"/>, no stack trace, and every file that was in the folder before unchanged; returns the run.</summary>
    private Ildm.Result Refused(Func<Ildm.Result> run, params string[] named)
    {
        var before = Snapshot();
        var result = run();

        Assert.True(result.ExitCode != 0, result.ToString());
        string error = result.Error.TrimEnd();
        Assert.StartsWith("error: ", error);
        Assert.DoesNotContain('\n', error);
        Assert.DoesNotContain("   at ", result.Error);
        Assert.DoesNotContain("Exception:", result.Error);
        foreach (var name in named) Assert.Contains(name, error);
        var after = Snapshot();
        foreach (var (path, hash) in before)
            Assert.True(after.TryGetValue(path, out var now) && now == hash, $"{path} was changed or removed: {result}");
        return result;
    }

    /// <summary>Every file but the data and the run's own record (its log and COMMAND_run.json, which every run writes by
    /// design, failed ones included).</summary>
    private Dictionary<string, string> Snapshot() =>
        Directory.EnumerateFiles(_folder, "*", SearchOption.AllDirectories)
            .Where(f => !f.StartsWith(Data, StringComparison.Ordinal) && !f.EndsWith(".log", StringComparison.Ordinal)
                && !f.EndsWith("_run.json", StringComparison.Ordinal))
            .ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(System.IO.File.ReadAllBytes(f))));

    private static string CopyOf(string source)
    {
        string copy = Directory.CreateTempSubdirectory("ildm-hostile-").FullName;
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(copy, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            System.IO.File.Copy(file, target);
        }
        // the config names the original's data folder, which stays until the class is done: the copy reads it from there
        return copy;
    }

    [Theory]
    [InlineData("huge string")]
    [InlineData("LZMA")]
    [InlineData("3 GB")]
    public void A_pth_with_a_huge_string_length_or_a_forged_zip_entry(string forgery)
    {
        string pth = Path.Combine(_folder, "forged.pth"), pickle = "archive/data.pkl";
        using (var zip = ZipFile.Open(pth, ZipArchiveMode.Create))
        using (var entry = zip.CreateEntry(pickle).Open())
        {
            var length = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(length, long.MaxValue / 2);
            entry.Write(forgery == "huge string"
                ? [0x80, 2, 0x8d, .. length, (byte)'.'] // PROTO 2, BINUNICODE8 of 4.6e18 bytes, STOP
                : [0x80, 2, (byte)'N', (byte)'.']); // PROTO 2, None, STOP
        }
        if (forgery != "huge string")
        {
            // the central directory record of the pickle: its method (LZMA is 14) or its uncompressed size
            var bytes = System.IO.File.ReadAllBytes(pth);
            int record = bytes.AsSpan().LastIndexOf(Encoding.ASCII.GetBytes(pickle)) - 46;
            Assert.Equal(0x02014b50u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(record)));
            if (forgery == "LZMA") BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(record + 10), 14);
            else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(record + 24), 3_000_000_000);
            System.IO.File.WriteAllBytes(pth, bytes);
        }

        Refused(() => Ildm.RunWithin(Limit, _folder, "import", pth, "--out", Path.Combine(_folder, "out.safetensors")), pth, pickle);
        Assert.False(System.IO.File.Exists(Path.Combine(_folder, "out.safetensors")));
    }

    /// <summary>A view of a one-float storage: 4096² elements by zero strides (the audit's 623-byte file that took 790 MB),
    /// or 65536³ whose span overflows 64 bits of bytes.</summary>
    [Theory]
    [InlineData(4096, 0, "zero or overlapping strides")]
    [InlineData(65536, 1, "spans more than")]
    public void A_pth_whose_tensor_view_amplifies_or_overflows(int size, int stride, string problem)
    {
        string pth = Path.Combine(_folder, "view.pth"), converted = Path.Combine(_folder, "out.safetensors");
        int rank = stride == 0 ? 2 : 3;
        TorchZip.Write(pth, TorchZip.OneTensor("FloatStorage", 1, [.. Enumerable.Repeat(size, rank)], [.. Enumerable.Repeat(stride, rank)]),
            new() { ["0"] = new byte[4] });

        Refused(() => Ildm.RunWithin(Limit, _folder, "import", pth, "--out", converted), pth, "archive/data/0", problem);
        Assert.False(System.IO.File.Exists(converted));
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    [InlineData(3e30f, "3E+30")]
    public void A_checkpoint_with_weights_that_are_not_finite_or_absurdly_large(float value, string shown)
    {
        string checkpoint = File("vqvae_autoencoder_ckpt.safetensors");
        string name = PoisonWithNaN(checkpoint, value);

        Refused(() => Stage("sample", []), checkpoint, $"'{name}'", shown);
    }

    /// <summary>Sets the first value of the checkpoint's first tensor to NaN, or <paramref name="value"/> (reading it must
    /// fail); returns the tensor's name.</summary>
    private static string PoisonWithNaN(string checkpoint, float value = float.NaN)
    {
        var tensors = SafeTensors.Read(checkpoint).ToDictionary();
        var (name, first) = tensors.First();
        var values = (float[])first.Floats!.Clone();
        values[0] = value;
        tensors[name] = HostTensor.FromFloats(first.Shape, values);
        SafeTensors.Write(checkpoint, tensors, SafeTensors.ReadMetadata(checkpoint));
        return name;
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
        12, "'b'", "overlap")]
    [InlineData("""{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}""", 8, "'a'", "cover 4 of the 8 data bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""",
        16, "'a'", "appears twice")]
    public void A_checkpoint_whose_tensor_layout_is_forged(string header, int dataBytes, string tensor, string problem)
    {
        string checkpoint = File("vqvae_autoencoder_ckpt.safetensors");
        var bytes = Encoding.UTF8.GetBytes(header);
        System.IO.File.WriteAllBytes(checkpoint, [.. BitConverter.GetBytes((ulong)bytes.Length), .. bytes, .. new byte[dataBytes]]);

        Refused(() => Stage("sample", []), checkpoint, tensor, problem);
    }

    /// <summary>Every command that reads the autoencoder's weights checks its set first, as a resume does.</summary>
    [Theory]
    [InlineData("train-autoencoder", "--resume")]
    [InlineData("infer-autoencoder")]
    [InlineData("train-ldm")]
    [InlineData("sample")]
    public void A_torn_checkpoint_set(params string[] command)
    {
        string discriminator = File("vqvae_discriminator_ckpt.safetensors");
        SafeTensors.Write(discriminator, SafeTensors.Read(discriminator), new Dictionary<string, string> { ["step"] = "1" });

        Refused(() => Stage(command[0], [.. command[1..], "--set", "train_params:perceptual_weight=0"]),
            discriminator, "(step 1)", File("vqvae_autoencoder_ckpt.safetensors"), "torn");
    }

    [Fact]
    public void Infer_autoencoder_reads_a_save_cut_short_after_its_commit_without_changing_it()
    {
        CutShortAfterManifest("vqvae_autoencoder_state");
        PoisonWithNaN(File("vqvae_autoencoder_ckpt.safetensors"));
        var before = Snapshot();

        var result = Stage("infer-autoencoder", ["--feature-count", "0"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(System.IO.File.Exists(File("autoencoder_evaluation.json")), result.ToString());
        var after = Snapshot();
        foreach (var (path, hash) in before) Assert.True(after.GetValueOrDefault(path) == hash, $"{path} was renamed or changed");
    }

    [Fact]
    public void Sample_reads_saves_cut_short_after_their_commit()
    {
        var trained = Stage("train-ldm", ["--set", "train_params:ldm_epochs=1", "--set", "train_params:ema_decay=0"]);
        Assert.True(trained.ExitCode == 0, trained.ToString());
        foreach (var (state, model) in new[] { ("vqvae_autoencoder_state", "vqvae_autoencoder_ckpt"), ("ddpm_state", "ddpm_ckpt") })
        {
            CutShortAfterManifest(state);
            PoisonWithNaN(File(model + ".safetensors"));
        }

        var result = Stage("sample", []);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(System.IO.File.Exists(File("samples/samples.png")), result.ToString());
    }

    [Fact]
    public void Overwrite_without_a_moving_average_retires_the_earlier_runs()
    {
        string[] oneEpoch = ["--set", "train_params:ldm_epochs=1"];
        var withEma = Stage("train-ldm", [.. oneEpoch, "--set", "train_params:ema_decay=0.9"]);
        Assert.True(withEma.ExitCode == 0, withEma.ToString());
        string ema = File("ddpm_ema_ckpt.safetensors");
        Assert.True(System.IO.File.Exists(ema), withEma.ToString());
        string staleEma = Path.Combine(_folder, "stale-ema.safetensors");
        System.IO.File.Copy(ema, staleEma);

        var overwritten = Stage("train-ldm", [.. oneEpoch, "--overwrite", "--set", "train_params:ema_decay=0"]);

        Assert.True(overwritten.ExitCode == 0, overwritten.ToString());
        Assert.False(System.IO.File.Exists(ema), "the earlier run's moving average is still there");
        // as a kill after the new set's commit and before the retirement leaves it: of the same step, and damaged, so
        // that a sampler reading it would fail
        System.IO.File.Move(staleEma, ema);
        PoisonWithNaN(ema);
        var sampled = Stage("sample", []);
        Assert.True(sampled.ExitCode == 0, sampled.ToString());
    }

    [Fact]
    public void Overwrite_without_a_class_condition_retires_the_earlier_class_list()
    {
        foreach (var name in new[] { "a/1.png", "a/2.png", "b/1.png", "b/2.png" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(Data, name))!);
            using var image = new Image<L8>(16, 16);
            image.SaveAsPng(Path.Combine(Data, name));
        }
        var config = JsonNode.Parse(System.IO.File.ReadAllText(Path.Combine(_folder, "tiny.json")))!;
        config["dataset_params"]!["im_path"] = Data;
        config["ldm_params"]!["condition_config"] = JsonNode.Parse("""
            {"condition_types": ["class"], "class_condition_config": {"num_classes": 2, "cond_drop_prob": 0.3}}
            """);
        string classConditional = Path.Combine(_folder, "classes.json");
        System.IO.File.WriteAllText(classConditional, config.ToJsonString());
        string[] oneEpoch = ["--set", "train_params:ldm_epochs=1", "--set", "train_params:ema_decay=0"];
        var withClasses = Stage("train-ldm", oneEpoch, config: classConditional);
        Assert.True(withClasses.ExitCode == 0, withClasses.ToString());
        string classList = File("classes.json");
        Assert.Equal("""["a","b"]""", System.IO.File.ReadAllText(classList));

        var overwritten = Stage("train-ldm", [.. oneEpoch, "--overwrite"]);

        Assert.True(overwritten.ExitCode == 0, overwritten.ToString());
        Assert.False(System.IO.File.Exists(classList), "the earlier run's class names are still beside a model without classes");
    }

    /// <summary>Leaves the stage of <paramref name="stateStem"/> as a kill after the commit point of its next save would:
    /// each file of its manifest copied under ".next" with the next step, the manifest naming that step, the files in
    /// place still of the step before (a reader must take the ".next" ones).</summary>
    private void CutShortAfterManifest(string stateStem)
    {
        string manifestPath = File(stateStem + ".manifest.json");
        var manifest = JsonNode.Parse(System.IO.File.ReadAllText(manifestPath))!;
        long next = (long)manifest["Step"]! + 1;
        foreach (var name in manifest["Files"]!.AsArray().Select(n => (string)n!))
        {
            var metadata = new Dictionary<string, string>(SafeTensors.ReadMetadata(File(name))) { ["step"] = $"{next}" };
            SafeTensors.Write(File(name) + ".next", SafeTensors.Read(File(name)), metadata);
        }
        manifest["Step"] = next;
        System.IO.File.WriteAllText(manifestPath, manifest.ToJsonString());
    }

    [Fact]
    public void Training_state_whose_progress_is_garbage()
    {
        string state = File("vqvae_autoencoder_state.safetensors");
        var metadata = new Dictionary<string, string>(SafeTensors.ReadMetadata(state)) { ["progress"] = "{\"Step\": [" };
        SafeTensors.Write(state, SafeTensors.Read(state), metadata);

        Refused(() => Stage("train-autoencoder", ["--resume", "--set", "train_params:perceptual_weight=0"]), state, "'progress'");
    }

    [SkippableFact]
    public void A_fifo_in_the_image_folder()
    {
        Directory.CreateDirectory(Data);
        using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(Data, "good.png"));
        string fifo = Path.Combine(Data, "pipe.png");
        NamedPipe.Make(fifo);

        Refused(() => Stage("train-autoencoder", ["--overwrite", "--set", $"dataset_params:im_path={Data}"]),
            fifo, "not a regular file", "skip_unreadable_images");
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void An_unreadable_subfolder_in_the_image_folder()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "folders are made unreadable by their POSIX mode");
        string[] launcher = Environment.IsPrivilegedProcess ? WithoutFileAccessCapabilities() : [];
        Directory.CreateDirectory(Data);
        string locked = Path.Combine(Data, "locked");
        Directory.CreateDirectory(locked);
        foreach (var folder in new[] { Data, locked })
            using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(folder, "image.png"));
        System.IO.File.SetUnixFileMode(locked, UnixFileMode.None);
        try
        {
            string[] data = ["--overwrite", "--set", $"dataset_params:im_path={Data}", "--set", "train_params:perceptual_weight=0"];
            Refused(() => Stage("train-autoencoder", data, launcher: launcher), locked, "unreadable folder", "skip_unreadable_images");

            var skipped = Stage("train-autoencoder", [.. data, "--set", "dataset_params:skip_unreadable_images=true"], launcher: launcher);
            Assert.True(skipped.ExitCode == 0, skipped.ToString());
            Assert.Contains($"{locked}: unreadable folder", skipped.Output);
            Assert.Contains("1 images", skipped.Output);
        }
        finally
        {
            System.IO.File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Root reads every folder whatever its mode, by its file-access capabilities: ildm runs without them (setpriv
    /// takes them out of its bounding set), or the test is skipped saying why.</summary>
    private static string[] WithoutFileAccessCapabilities()
    {
        string[] launcher = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"];
        int exitCode;
        try
        {
            using var probe = System.Diagnostics.Process.Start(launcher[0], [.. launcher[1..], "true"]);
            probe.WaitForExit();
            exitCode = probe.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            exitCode = -1; // no setpriv
        }
        Skip.If(exitCode != 0, "running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here: no folder is unreadable to root");
        return launcher;
    }

    [Fact]
    public void A_palette_png_with_indices_beyond_its_palette()
    {
        Directory.CreateDirectory(Data);
        using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(Data, "good.png"));
        string png = Path.Combine(Data, "indexed.png");
        System.IO.File.WriteAllBytes(png, IndexedPng.Bytes(16, 16, 8, [0, 0, 0, 255, 255, 255], (x, y) => 200));

        Refused(() => Stage("train-autoencoder", ["--overwrite", "--set", $"dataset_params:im_path={Data}"]),
            png, "palette indices beyond its 2 colours", "skip_unreadable_images");
    }

    /// <summary>Images whose header reads but whose pixels do not: refused by the scan, before training, naming the file.</summary>
    [Theory]
    [InlineData("truncated.png", "")]
    [InlineData("bomb.bmp", "30000×30000")]
    public void An_image_that_cannot_be_decoded_in_the_image_folder(string name, string detail)
    {
        Directory.CreateDirectory(Data);
        using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(Data, "good.png"));
        string broken = Path.Combine(Data, name);
        using (var image = new Image<L8>(16, 16))
        {
            image[3, 4] = new L8(200);
            if (name.EndsWith(".png", StringComparison.Ordinal)) image.SaveAsPng(broken);
            else image.SaveAsBmp(broken);
        }
        var bytes = System.IO.File.ReadAllBytes(broken);
        if (name.EndsWith(".png", StringComparison.Ordinal)) bytes = bytes[..(bytes.Length / 2)]; // the pixel data cut short
        else
            foreach (var offset in new[] { 18, 22 }) // a header claiming 30000×30000 pixels (900 MB decoded) in a tiny file
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), 30000);
        System.IO.File.WriteAllBytes(broken, bytes);

        Refused(() => Stage("train-autoencoder", ["--overwrite", "--set", $"dataset_params:im_path={Data}"]),
            broken, detail, "skip_unreadable_images");
    }

    [Fact]
    public void A_mask_value_beyond_the_mask_channels()
    {
        string images = Path.Combine(Data, "images"), masks = Path.Combine(Data, "masks"), hostile = Path.Combine(masks, "b.png");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(masks);
        foreach (var name in new[] { "a.png", "b.png" })
        {
            using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(images, name));
            using var mask = new Image<L8>(16, 16);
            if (name == "b.png") mask[5, 3] = new L8(7); // of 2 channels
            mask.SaveAsPng(Path.Combine(masks, name));
        }
        var config = JsonNode.Parse(System.IO.File.ReadAllText(Path.Combine(_folder, "tiny.json")))!;
        config["dataset_params"]!["im_path"] = images;
        config["dataset_params"]!["mask_path"] = masks;
        config["ldm_params"]!["condition_config"] = JsonNode.Parse("""
            {"condition_types": ["image"], "image_condition_config": {"image_condition_input_channels": 2,
             "image_condition_output_channels": 1, "image_condition_h": 16, "image_condition_w": 16, "cond_drop_prob": 0.1}}
            """);
        string masked = Path.Combine(_folder, "masked.json");
        System.IO.File.WriteAllText(masked, config.ToJsonString());

        Refused(() => Stage("train-ldm", [], config: masked), hostile, "pixel value 7", "image_condition_input_channels 2");
    }

    [Fact]
    public void An_idx_gzip_bomb()
    {
        Directory.CreateDirectory(Data);
        string bomb = Path.Combine(Data, "train-images-idx3-ubyte.gz");
        var header = new byte[16];
        foreach (var (offset, value) in new[] { (0, 0x803), (4, 1), (8, 16), (12, 16) })
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(offset), value);
        using (var gzip = new GZipStream(System.IO.File.Create(bomb), CompressionLevel.SmallestSize))
        {
            gzip.Write(header);
            gzip.Write(new byte[20_000_000]); // 20 MB of zeros in about 20 KB, after a header that promises 256 bytes
        }

        Refused(() => Stage("train-autoencoder", ["--overwrite", "--set", $"dataset_params:im_path={Data}"]),
            bomb, "decompresses to more than");
    }

    [Fact]
    public void Idx_test_images_whose_count_disagrees_with_their_labels()
    {
        Directory.CreateDirectory(Data);
        string labels = Path.Combine(Data, "t10k-labels-idx1-ubyte");
        System.IO.File.WriteAllBytes(labels, [0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5]);
        var images = new byte[16 + 4 * 16 * 16];
        foreach (var (offset, value) in new[] { (0, 0x803), (4, 4), (8, 16), (12, 16) })
            BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(offset), value);
        System.IO.File.WriteAllBytes(Path.Combine(Data, "t10k-images-idx3-ubyte"), images);

        Refused(() => Evaluate(Data), labels, "5 labels for the 4 images");
    }

    [SkippableFact]
    public void A_fifo_or_a_broken_image_first_among_the_images_to_evaluate()
    {
        Directory.CreateDirectory(Data);
        using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(Data, "b.png"));
        string first = Path.Combine(Data, "a.png");
        NamedPipe.Make(first);
        Refused(() => Evaluate(Data), first, "not a regular file");

        System.IO.File.Delete(first);
        System.IO.File.WriteAllText(first, "not an image");
        Refused(() => Evaluate(Data), first, "not a recognised image format");
    }

    [Fact]
    public void A_broken_image_among_the_images_to_evaluate()
    {
        Directory.CreateDirectory(Data);
        using (var image = new Image<L8>(16, 16)) image.SaveAsPng(Path.Combine(Data, "a.png"));
        string broken = Path.Combine(Data, "b.png");
        System.IO.File.WriteAllText(broken, "not an image");

        var refusal = Refused(() => Evaluate(Data), broken, "--real", "move it out");

        Assert.DoesNotContain("skip_unreadable_images", refusal.Error); // a config key; evaluate has no config
    }

    /// <summary>`evaluate` of <paramref name="images"/> against themselves, its JSON in the copy.</summary>
    private Ildm.Result Evaluate(string images) => Ildm.RunWithin(Limit, _folder, "evaluate", "--real", images, "--fake", images,
        "--count", "4", "--device", "cpu", "--json", Path.Combine(_folder, "evaluation.json"));

    [Theory]
    [InlineData("train_params:task_name=../outside", "train_params.task_name")]
    [InlineData("train_params:task_name=/tmp/ildm-hostile-absolute", "train_params.task_name")]
    [InlineData("diffusion_params:num_timesteps=1", "diffusion_params.num_timesteps")]
    [InlineData("dataset_params:im_size=18", "dataset_params.im_size")]
    [InlineData("autoencoder_params:down_channels=[2000000000,2000000000,2000000000]", "autoencoder_params.down_channels[0]")]
    public void Config_values_out_of_range(string setting, string key)
    {
        Refused(() => Stage("train-autoencoder", ["--overwrite", "--set", setting]), key);
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(_folder)!, "outside")));
        Assert.False(Directory.Exists("/tmp/ildm-hostile-absolute"));
    }

    [Fact]
    public void A_nul_character_in_the_task_name_of_a_config_file()
    {
        var config = JsonNode.Parse(System.IO.File.ReadAllText(Path.Combine(_folder, "tiny.json")))!;
        config["train_params"]!["task_name"] = "tiny\0evil";
        string hostile = Path.Combine(_folder, "nul.json");
        System.IO.File.WriteAllText(hostile, config.ToJsonString());
        Assert.Contains("\\u0000", System.IO.File.ReadAllText(hostile)); // escaped in the file, as a user's editor would write it
        var folders = Directory.GetDirectories(_folder);

        Refused(() => Stage("train-autoencoder", ["--set", "train_params:perceptual_weight=0"], config: hostile),
            hostile, "train_params.task_name", "\\u0000");
        Assert.Equal(folders, Directory.GetDirectories(_folder)); // no task folder made, under any name
    }

    [Theory]
    [InlineData(new[] { "--sampler", "ddim", "--eta", "NaN" }, "--eta")]
    [InlineData(new[] { "--sampler", "ddim", "--eta", "Infinity" }, "--eta")]
    [InlineData(new[] { "--guidance", "NaN" }, "--guidance")]
    [InlineData(new[] { "--grid-scale", "17" }, "--grid-scale")]
    [InlineData(new[] { "--count", "100000000" }, "--count")]
    [InlineData(new[] { "--set", "train_params:num_samples=2000000000" }, "train_params.num_samples")]
    [InlineData(new[] { "--count", "16777216", "--batch-size", "16777216" }, "--batch-size")]
    [InlineData(new[] { "--save-every", "-1" }, "--save-every")]
    public void Sampling_options_out_of_range(string[] options, string named) => Refused(() => Stage("sample", options), named);

    [Fact]
    public void Inference_and_evaluation_options_out_of_range()
    {
        Refused(() => Stage("infer-autoencoder", ["--feature-count", "-1"]), "--feature-count");
        foreach (var size in new[] { "0", "33" })
            Refused(() => Ildm.RunWithin(Limit, _folder, "evaluate", "--real", _folder, "--fake", _folder, "--image-size", size,
                "--device", "cpu", "--json", Path.Combine(_folder, "evaluation.json")), "--image-size", size);
        Assert.False(System.IO.File.Exists(Path.Combine(_folder, "evaluation.json")));
    }

    [Fact]
    public void An_output_folder_that_cannot_be_written()
    {
        string file = Path.Combine(_folder, "a-file");
        System.IO.File.WriteAllText(file, "not a folder");
        Refused(() => Stage("train-autoencoder", ["--set", "train_params:perceptual_weight=0"], output: Path.Combine(file, "runs")),
            Path.Combine(file, "runs", "tiny"), "--output");
    }

    [Fact]
    public void A_parity_manifest_that_is_garbage()
    {
        Directory.CreateDirectory(Data);
        string manifest = Path.Combine(Data, "manifest.json");
        System.IO.File.WriteAllText(manifest, "[{\"case\": 3, \"rel_l2_tolerance\": \"tight\"}]");

        Refused(() => Ildm.RunWithin(Limit, _folder, "parity", "--fixtures", Data, "--device", "cpu"), manifest);
    }
}
