using System.Text.Json;
using System.Text.Json.Nodes;
using IlgpuDiffusion.Diffusion.Config;
using static IlgpuDiffusion.Diffusion.Tests.ConfigTests;
using static IlgpuDiffusion.Diffusion.Tests.ReferenceConfigs;

namespace IlgpuDiffusion.Diffusion.Tests;

/// <summary>ExperimentConfig.Load: the shipped configs, and every kind of bad file or override, which must name the file
/// and the key.</summary>
public sealed class ConfigLoadingTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ildm-config-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Shipped(string name) => Fixtures.RepoFile($"configs/{name}.json");

    /// <summary>A copy of a shipped config with <paramref name="edit"/> applied, as a file.</summary>
    private string Edited(Action<JsonObject> edit, string from = "mnist")
    {
        var json = JsonNode.Parse(File.ReadAllText(Shipped(from)))!.AsObject();
        edit(json);
        return Written(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private string Written(string text)
    {
        var path = Path.Combine(_folder, $"config{Directory.GetFiles(_folder).Length}.json");
        File.WriteAllText(path, text);
        return path;
    }

    private static string Json<T>(T value) => JsonSerializer.Serialize(value, SnakeCase);

    /// <summary>The error for an edited mnist config (or the given overrides), which must start with the file and name
    /// <paramref name="key"/>.</summary>
    private ConfigException Fails(string key, Action<JsonObject> edit, params string[] overrides)
    {
        var path = Edited(edit);
        var error = Assert.Throws<ConfigException>(() => ExperimentConfig.Load(path, overrides));
        Assert.Equal(key, error.Key);
        Assert.StartsWith($"{path}: {key} ", error.Message);
        return error;
    }

    private ConfigException Fails(string key, params string[] overrides) => Fails(key, _ => { }, overrides);

    [Theory]
    [InlineData("mnist")]
    [InlineData("celebhq")]
    [InlineData("fashion-mnist")]
    public void The_shipped_configs_load_and_validate(string name)
    {
        var config = ExperimentConfig.Load(Shipped(name));
        Assert.Equal(Shipped(name), config.Source);
        Assert.Equal(name, config.Dataset.Name);
        Assert.Equal(name, config.Train.TaskName);
        Assert.Equal(Json(DefaultDiffusion), Json(config.Diffusion));
    }

    [Fact]
    public void The_mnist_and_celebhq_files_are_the_original_configurations()
    {
        var mnist = ExperimentConfig.Load(Shipped("mnist"));
        Assert.Equal(Json(MnistAutoencoder), Json(mnist.Autoencoder));
        Assert.Equal(Json(MnistLdm), Json(mnist.Ldm));
        Assert.Equal(Json(MnistTrain), Json(mnist.Train));
        var celebhq = ExperimentConfig.Load(Shipped("celebhq"));
        Assert.Equal(Json(CelebHqAutoencoder), Json(celebhq.Autoencoder));
        Assert.Equal(Json(CelebHqLdm), Json(celebhq.Ldm));
    }

    [Fact]
    public void The_mnist_class_cond_file_is_the_original_configuration()
    {
        var config = ExperimentConfig.Load(Shipped("mnist_class_cond"));
        Assert.Equal(Json(MnistClassCondLdm), Json(config.Ldm));
        Assert.Equal(Json(MnistAutoencoder), Json(config.Autoencoder));
        Assert.Equal(1.0, config.Train.CfGuidanceScale);
    }

    [Theory]
    [InlineData("celebhq_text_cond", new[] { "text" })]
    [InlineData("celebhq_text_image_cond", new[] { "text", "image" })]
    [InlineData("fashion-mnist-class-cond", new[] { "class" })]
    public void The_conditional_configs_load_with_their_conditions(string name, string[] types)
    {
        var config = ExperimentConfig.Load(Shipped(name));
        Assert.Equal(types, config.Ldm.ConditionConfig!.ConditionTypes);
        Assert.Equal(types.Contains("text"), config.Ldm.ConditionConfig.TextCondition is { TextEmbedDim: 512 });
        Assert.Equal(types.Contains("image"), config.Ldm.ConditionConfig.ImageCondition is { ImageConditionInputChannels: 18 });
    }

    [Fact]
    public void A_condition_type_without_its_settings_names_the_missing_key() =>
        Fails("ldm_params.condition_config.class_condition_config",
            json => json["ldm_params"]!["condition_config"] = new JsonObject { ["condition_types"] = new JsonArray("class") });

    [Fact]
    public void A_bad_key_inside_the_condition_config_is_named_with_its_full_path() =>
        Fails("ldm_params.condition_config.class_condition_config.num_clases", json => json["ldm_params"]!["condition_config"] =
            new JsonObject
            {
                ["condition_types"] = new JsonArray("class"),
                ["class_condition_config"] = new JsonObject { ["num_clases"] = 10, ["num_classes"] = 10, ["cond_drop_prob"] = 0.1 },
            });

    [Fact]
    public void An_unknown_condition_type_is_named()
    {
        var error = Fails("ldm_params.condition_config.condition_types[0]",
            json => json["ldm_params"]!["condition_config"] = new JsonObject { ["condition_types"] = new JsonArray("colour") });
        Assert.Contains("class, text, image", error.Message);
    }

    [Fact]
    public void Optional_keys_take_their_defaults()
    {
        var config = ExperimentConfig.Load(Shipped("mnist"));
        Assert.Equal((0, false), (config.Dataset.MaxImages, config.Dataset.SkipUnreadableImages));
        Assert.Equal((0, 0.0, "auto", 50),
            (config.Train.CheckpointSteps, config.Train.EmaDecay, config.Train.Lpips, config.Train.LdmLogSteps));
    }

    [Fact]
    public void The_fashion_mnist_default_sets_the_quick_run_keys()
    {
        var config = ExperimentConfig.Load(Shipped("fashion-mnist"));
        Assert.Equal(("/usr/share/datasets/fashion-mnist", 1, 28, 10000),
            (config.Dataset.ImPath, config.Dataset.ImChannels, config.Dataset.ImSize, config.Dataset.MaxImages));
        Assert.Equal((200, 0.999, "auto", true),
            (config.Train.CheckpointSteps, config.Train.EmaDecay, config.Train.Lpips, config.Train.SaveLatents));
    }

    [Fact]
    public void An_unknown_key_is_named_with_the_file() =>
        Fails("train_params.ldm_epoch", c => c["train_params"]!["ldm_epoch"] = 10);

    [Fact]
    public void An_unknown_section_is_named_with_the_file() =>
        Fails("training_params", c => c["training_params"] = new JsonObject { ["ldm_epochs"] = 1 });

    [Fact]
    public void A_missing_section_or_key_is_named()
    {
        Fails("diffusion_params", c => c.Remove("diffusion_params"));
        Fails("train_params.ldm_epochs", c => c["train_params"]!.AsObject().Remove("ldm_epochs"));
    }

    [Fact]
    public void A_wrong_type_is_named()
    {
        Assert.Contains("must be an integer, got 'ten'",
            Fails("train_params.ldm_epochs", c => c["train_params"]!["ldm_epochs"] = "ten").Message);
        Assert.Contains("got a list or object",
            Fails("train_params.ldm_epochs", c => c["train_params"]!["ldm_epochs"] = new JsonArray(1, 2)).Message);
        Assert.Contains("got a list or object",
            Fails("train_params.ldm_lr", c => c["train_params"]!["ldm_lr"] = new JsonObject { ["value"] = 1 }).Message);
        Assert.Contains("got null",
            Fails("train_params.ldm_epochs", c => c["train_params"]!["ldm_epochs"] = null).Message);
        Assert.Contains("must be true or false, got '1'",
            Fails("train_params.save_latents", c => c["train_params"]!["save_latents"] = 1).Message);
        Assert.Contains("must be a list of integers, got '64'",
            Fails("autoencoder_params.down_channels", c => c["autoencoder_params"]!["down_channels"] = 64).Message);
        Assert.Contains("must be a list of integers, got an object",
            Fails("autoencoder_params.down_channels",
                c => c["autoencoder_params"]!["down_channels"] = new JsonObject { ["a"] = 1 }).Message);
        Assert.Contains("must not be empty",
            Fails("autoencoder_params.down_channels", c => c["autoencoder_params"]!["down_channels"] = new JsonArray()).Message);
        Assert.Contains("must be an integer, got 'x'",
            Fails("autoencoder_params.down_channels[1]",
                c => c["autoencoder_params"]!["down_channels"] = new JsonArray(32, "x", 128)).Message);
        Assert.Contains("must be a number, got 'NaN'",
            Fails("train_params.ldm_lr", c => c["train_params"]!["ldm_lr"] = "NaN").Message);
    }

    [Fact]
    public void A_broken_rule_is_named_with_the_file()
    {
        var error = Fails("autoencoder_params.mid_channels[0]", c => c["autoencoder_params"]!["mid_channels"] = new JsonArray(64, 128));
        Assert.EndsWith("must equal down_channels[-1] (128), got 64", error.Message);
        Fails("train_params.lpips", c => c["train_params"]!["lpips"] = "alexnet");
        Fails("train_params.ema_decay", c => c["train_params"]!["ema_decay"] = 1.0);
    }

    [Fact]
    public void Overrides_change_values()
    {
        var config = ExperimentConfig.Load(Shipped("fashion-mnist"),
        [
            "train_params:ldm_epochs=2",
            "autoencoder_params:down_channels=[16,32,32]",
            "autoencoder_params.mid_channels=32, 32",
            "ldm_params:attn_down:0=true",
            "train_params.lpips=resnet18",
            "dataset_params:skip_unreadable_images=true",
        ]);
        Assert.Equal(2, config.Train.LdmEpochs);
        Assert.Equal([16, 32, 32], config.Autoencoder.DownChannels);
        Assert.Equal([32, 32], config.Autoencoder.MidChannels);
        Assert.Equal([true, true], config.Ldm.AttnDown);
        Assert.Equal("resnet18", config.Train.Lpips);
        Assert.True(config.Dataset.SkipUnreadableImages);
    }

    [Fact]
    public void An_override_can_set_an_optional_key_and_shorten_a_list()
    {
        var config = ExperimentConfig.Load(Shipped("mnist"),
            ["dataset_params:max_images=100", "ldm_params:down_channels=[128,256]", "ldm_params:mid_channels=[256,128]",
             "ldm_params:down_sample=false", "ldm_params:attn_down=[true]"]);
        Assert.Equal(100, config.Dataset.MaxImages);
        Assert.Equal([128, 256], config.Ldm.DownChannels);
        Assert.Equal([false], config.Ldm.DownSample);
    }

    /// <summary>An error in an overridden value is checked like the file's but blamed on the override, not on the file.</summary>
    private static ConfigException FailsBySet(string key, string item, string shipped = "mnist")
    {
        var error = Assert.Throws<ConfigException>(() => ExperimentConfig.Load(Shipped(shipped), [item]));
        Assert.Equal(key, error.Key);
        Assert.StartsWith($"--set {item}: {key} ", error.Message);
        Assert.DoesNotContain(Shipped(shipped), error.Message);
        return error;
    }

    [Fact]
    public void Overridden_values_are_checked_like_the_file_and_blamed_on_the_override()
    {
        Assert.Contains("got 'ten'", FailsBySet("train_params.ldm_epochs", "train_params:ldm_epochs=ten").Message);
        FailsBySet("train_params.ldm_epochs", "train_params:ldm_epochs=[1,2]");
        FailsBySet("train_params.ldm_epoch", "train_params:ldm_epoch=2");
        FailsBySet("autoencoder_params.mid_channels[0]", "autoencoder_params:mid_channels=64,128");
        FailsBySet("train_params.ldm_batch_size", "train_params.ldm_batch_size=0");
        // the file's own mistakes are still the file's, even when other keys are overridden
        Fails("train_params.ldm_lr", c => c["train_params"]!["ldm_lr"] = "fast", "train_params:ldm_epochs=2");
    }

    [Fact]
    public void Im_size_must_survive_every_down_sampling()
    {
        // fashion-mnist: one autoencoder down-sampling and one in the UNet: 28 works, 30 would leave 15 → 7 → 14
        var error = FailsBySet("dataset_params.im_size", "dataset_params:im_size=30", "fashion-mnist");
        Assert.Contains("must be divisible by 4 = 2^2 (1 down-sampling(s) in autoencoder_params.down_sample and 1 in "
            + "ldm_params.down_sample), got 30; use 28 or 32", error.Message);
        Assert.Contains("by 8", Fails("dataset_params.im_size", c => c["dataset_params"]!["im_size"] = 20,
            "ldm_params:down_sample=[true,false,false]").Message);
        Assert.Equal(32, ExperimentConfig.Load(Shipped("fashion-mnist"), ["dataset_params:im_size=32"]).Dataset.ImSize);
    }

    [Fact]
    public void Image_channels_are_grey_or_rgb()
    {
        var error = Fails("dataset_params.im_channels", c => c["dataset_params"]!["im_channels"] = 2);
        Assert.EndsWith("must be 1 (grey) or 3 (RGB), got 2", error.Message);
        Assert.DoesNotContain("Parameter", error.Message);
    }

    /// <summary>The original's mnist.yaml, turned into JSON, names its checkpoint files and latent folders; those keys load.</summary>
    [Fact]
    public void The_original_file_name_keys_are_accepted()
    {
        var path = Edited(c =>
        {
            var train = c["train_params"]!.AsObject();
            train["vae_latent_dir_name"] = "vae_latents";
            train["vqvae_latent_dir_name"] = "vqvae_latents";
            train["ldm_ckpt_name"] = "ddpm_ckpt_class_cond.pth";
            train["vqvae_autoencoder_ckpt_name"] = "vqvae_autoencoder_ckpt.pth";
            train["vae_autoencoder_ckpt_name"] = "vae_autoencoder_ckpt.pth";
            train["vqvae_discriminator_ckpt_name"] = "vqvae_discriminator_ckpt.pth";
            train["vae_discriminator_ckpt_name"] = "vae_discriminator_ckpt.pth";
        });
        Assert.Equal("ddpm_ckpt_class_cond.pth", ExperimentConfig.Load(path).Train.LdmCkptName);
    }

    [Fact]
    public void An_override_of_an_unknown_section_or_list_element_is_named()
    {
        Assert.Contains("training:ldm_epochs=2", Fails("training", "training:ldm_epochs=2").Message);
        Assert.Contains("ldm_params:attn_down:5=true", Fails("ldm_params.attn_down[5]", "ldm_params:attn_down:5=true").Message);
    }

    [Theory]
    [InlineData("train_params:ldm_epochs")]
    [InlineData("ldm_epochs=2")]
    [InlineData("=2")]
    [InlineData("train_params:=2")]
    [InlineData("train_params:down_channels:x=1")]
    [InlineData("a:b:0:1=2")]
    public void A_malformed_override_is_named(string item)
    {
        var error = Assert.Throws<InvalidDataException>(() => ExperimentConfig.Load(Shipped("mnist"), [item]));
        Assert.StartsWith($"{Shipped("mnist")}: malformed override '{item}'", error.Message);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var path = Path.Combine(_folder, "nope.json");
        var error = Assert.Throws<FileNotFoundException>(() => ExperimentConfig.Load(path));
        Assert.Equal(path, error.FileName);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Invalid_json_is_named_with_its_line()
    {
        var path = Written("{\n  \"dataset_params\": {\n    \"im_channels\": 1 \"im_size\": 28\n  }\n}\n");
        var error = Assert.Throws<InvalidDataException>(() => ExperimentConfig.Load(path));
        Assert.StartsWith($"{path}: invalid JSON at line 3, column ", error.Message);
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("{ \"train_params\": { \"seed\": 1, \"seed\": 2 } }")]
    [InlineData("")]
    public void Json_that_is_not_a_config_object_is_named(string text)
    {
        var path = Written(text);
        var error = Assert.Throws<InvalidDataException>(() => ExperimentConfig.Load(path));
        Assert.StartsWith($"{path}: invalid JSON", error.Message);
    }

    [Theory]
    [InlineData("train_params:task_name=../outside", "train_params.task_name", "plain folder name")]
    [InlineData("train_params:task_name=/tmp/elsewhere", "train_params.task_name", "plain folder name")]
    [InlineData("train_params:task_name=..", "train_params.task_name", "plain folder name")]
    [InlineData("train_params:task_name=a\0b", "train_params.task_name", "\\u0000")]
    [InlineData("diffusion_params:num_timesteps=1", "diffusion_params.num_timesteps", "at least 2")]
    [InlineData("autoencoder_params:z_channels=1000000", "autoencoder_params.z_channels", "at most 8192")]
    [InlineData("ldm_params:down_channels=[1000000000,1000000000,1000000000,1000000000]", "ldm_params.down_channels[0]", "at most")]
    [InlineData("dataset_params:im_size=100000", "dataset_params.im_size", "at most")]
    public void Hostile_values_are_refused_naming_the_key(string setting, string key, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ExperimentConfig.Load(Edited(_ => { }), [setting]));
        Assert.Equal(key, error.Key);
        Assert.StartsWith($"--set {setting}: {key} ", error.Message); // blamed on the override, not the file
        Assert.Contains(expected, error.Message);
    }
}
