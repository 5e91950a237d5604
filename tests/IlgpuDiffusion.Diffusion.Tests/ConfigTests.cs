using System.Text.Json;
using IlgpuDiffusion.Diffusion.Config;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Tensors;
using static IlgpuDiffusion.Diffusion.Tests.ReferenceConfigs;

namespace IlgpuDiffusion.Diffusion.Tests;

public class ConfigTests
{
    /// <summary>One broken value per validity rule: the rule, the key the error must name, and the check.</summary>
    private static readonly (string Rule, string Key, Action Validate)[] Rules =
    [
        ("ae z_channels positive", "autoencoder_params.z_channels",
            () => (MnistAutoencoder with { ZChannels = 0 }).Validate()),
        ("ae codebook_size positive", "autoencoder_params.codebook_size",
            () => (MnistAutoencoder with { CodebookSize = 0 }).Validate()),
        ("ae down_channels non-empty", "autoencoder_params.down_channels",
            () => (MnistAutoencoder with { DownChannels = [] }).Validate()),
        ("ae down_channels positive", "autoencoder_params.down_channels[1]",
            () => (MnistAutoencoder with { DownChannels = [32, -64, 128] }).Validate()),
        ("ae mid_channels non-empty", "autoencoder_params.mid_channels",
            () => (MnistAutoencoder with { MidChannels = [] }).Validate()),
        ("ae down_sample length", "autoencoder_params.down_sample",
            () => (MnistAutoencoder with { DownSample = [true] }).Validate()),
        ("ae attn_down length", "autoencoder_params.attn_down",
            () => (MnistAutoencoder with { AttnDown = [false, false, false] }).Validate()),
        ("ae norm_channels positive", "autoencoder_params.norm_channels",
            () => (MnistAutoencoder with { NormChannels = 0 }).Validate()),
        ("ae num_heads positive", "autoencoder_params.num_heads",
            () => (MnistAutoencoder with { NumHeads = 0 }).Validate()),
        ("ae num_down_layers positive", "autoencoder_params.num_down_layers",
            () => (MnistAutoencoder with { NumDownLayers = 0 }).Validate()),
        ("ae num_mid_layers positive", "autoencoder_params.num_mid_layers",
            () => (MnistAutoencoder with { NumMidLayers = 0 }).Validate()),
        ("ae num_up_layers positive", "autoencoder_params.num_up_layers",
            () => (MnistAutoencoder with { NumUpLayers = 0 }).Validate()),
        ("ae down_channels divisible by norm_channels", "autoencoder_params.down_channels[1]",
            () => (MnistAutoencoder with { DownChannels = [32, 48, 128] }).Validate()),
        ("ae down_channels divisible by num_heads", "autoencoder_params.down_channels[0]",
            () => (MnistAutoencoder with { NumHeads = 64 }).Validate()),
        ("ae mid_channels divisible by norm_channels", "autoencoder_params.mid_channels[1]",
            () => (MnistAutoencoder with { MidChannels = [128, 112, 128] }).Validate()),
        ("ae mid_channels[0] = down_channels[-1]", "autoencoder_params.mid_channels[0]",
            () => (MnistAutoencoder with { MidChannels = [64, 128] }).Validate()),
        ("ae mid_channels[-1] = down_channels[-1]", "autoencoder_params.mid_channels[-1]",
            () => (MnistAutoencoder with { MidChannels = [128, 64] }).Validate()),

        ("ldm down_channels at least two", "ldm_params.down_channels",
            () => (MnistLdm with { DownChannels = [256], DownSample = [], AttnDown = [] }).Validate()),
        ("ldm down_sample length", "ldm_params.down_sample",
            () => (MnistLdm with { DownSample = [false] }).Validate()),
        ("ldm attn_down length", "ldm_params.attn_down",
            () => (MnistLdm with { AttnDown = [true] }).Validate()),
        ("ldm mid_channels[0] = down_channels[-1]", "ldm_params.mid_channels[0]",
            () => (CelebHqLdm with { MidChannels = [512, 512] }).Validate()),
        ("ldm mid_channels[-1] = down_channels[-2]", "ldm_params.mid_channels[-1]",
            () => (CelebHqLdm with { MidChannels = [768, 768] }).Validate()),
        ("ldm time_emb_dim positive", "ldm_params.time_emb_dim",
            () => (MnistLdm with { TimeEmbDim = 0 }).Validate()),
        ("ldm time_emb_dim even", "ldm_params.time_emb_dim",
            () => (MnistLdm with { TimeEmbDim = 255 }).Validate()),
        ("ldm conv_out_channels positive", "ldm_params.conv_out_channels",
            () => (MnistLdm with { ConvOutChannels = 0 }).Validate()),
        ("ldm conv_out_channels divisible", "ldm_params.conv_out_channels",
            () => (MnistLdm with { ConvOutChannels = 100 }).Validate()),
        ("ldm channels divisible by num_heads", "ldm_params.down_channels[0]",
            () => (CelebHqLdm with { NumHeads = 12 }).Validate()),

        ("dataset im_channels positive", "dataset_params.im_channels",
            () => (MnistDataset with { ImChannels = 0 }).Validate()),
        ("dataset im_size positive", "dataset_params.im_size",
            () => (MnistDataset with { ImSize = -1 }).Validate()),
        ("dataset name non-empty", "dataset_params.name",
            () => (MnistDataset with { Name = "" }).Validate()),
        ("dataset im_path non-empty", "dataset_params.im_path",
            () => (MnistDataset with { ImPath = " " }).Validate()),
        ("dataset max_images non-negative", "dataset_params.max_images",
            () => (MnistDataset with { MaxImages = -1 }).Validate()),

        ("diffusion num_timesteps positive", "diffusion_params.num_timesteps",
            () => (DefaultDiffusion with { NumTimesteps = 0 }).Validate()),
        ("diffusion beta_start positive", "diffusion_params.beta_start",
            () => (DefaultDiffusion with { BetaStart = 0 }).Validate()),
        ("diffusion beta_end not below beta_start", "diffusion_params.beta_end",
            () => (DefaultDiffusion with { BetaEnd = 0.001 }).Validate()),
        ("diffusion beta_end below 1", "diffusion_params.beta_end",
            () => (DefaultDiffusion with { BetaEnd = 1 }).Validate()),

        ("train seed non-negative", "train_params.seed",
            () => (MnistTrain with { Seed = -1 }).Validate()),
        ("train ldm_batch_size positive", "train_params.ldm_batch_size",
            () => (MnistTrain with { LdmBatchSize = 0 }).Validate()),
        ("train autoencoder_batch_size positive", "train_params.autoencoder_batch_size",
            () => (MnistTrain with { AutoencoderBatchSize = 0 }).Validate()),
        ("train disc_start non-negative", "train_params.disc_start",
            () => (MnistTrain with { DiscStart = -1 }).Validate()),
        ("train disc_weight non-negative", "train_params.disc_weight",
            () => (MnistTrain with { DiscWeight = -0.5 }).Validate()),
        ("train codebook_weight non-negative", "train_params.codebook_weight",
            () => (MnistTrain with { CodebookWeight = -1 }).Validate()),
        ("train commitment_beta non-negative", "train_params.commitment_beta",
            () => (MnistTrain with { CommitmentBeta = double.NaN }).Validate()),
        ("train perceptual_weight non-negative", "train_params.perceptual_weight",
            () => (MnistTrain with { PerceptualWeight = -1 }).Validate()),
        ("train kl_weight non-negative", "train_params.kl_weight",
            () => (MnistTrain with { KlWeight = -1e-6 }).Validate()),
        ("train ldm_epochs positive", "train_params.ldm_epochs",
            () => (MnistTrain with { LdmEpochs = 0 }).Validate()),
        ("train autoencoder_epochs positive", "train_params.autoencoder_epochs",
            () => (MnistTrain with { AutoencoderEpochs = 0 }).Validate()),
        ("train ldm_lr positive", "train_params.ldm_lr",
            () => (MnistTrain with { LdmLr = 0 }).Validate()),
        ("train autoencoder_lr positive", "train_params.autoencoder_lr",
            () => (MnistTrain with { AutoencoderLr = -1e-4 }).Validate()),
        ("train autoencoder_acc_steps positive", "train_params.autoencoder_acc_steps",
            () => (MnistTrain with { AutoencoderAccSteps = 0 }).Validate()),
        ("train autoencoder_img_save_steps positive", "train_params.autoencoder_img_save_steps",
            () => (MnistTrain with { AutoencoderImgSaveSteps = 0 }).Validate()),
        ("train num_samples positive", "train_params.num_samples",
            () => (MnistTrain with { NumSamples = 0 }).Validate()),
        ("train num_grid_rows positive", "train_params.num_grid_rows",
            () => (MnistTrain with { NumGridRows = 0 }).Validate()),
        ("train task_name non-empty", "train_params.task_name",
            () => (MnistTrain with { TaskName = "" }).Validate()),
        ("train checkpoint_steps non-negative", "train_params.checkpoint_steps",
            () => (MnistTrain with { CheckpointSteps = -1 }).Validate()),
        ("train ema_decay non-negative", "train_params.ema_decay",
            () => (MnistTrain with { EmaDecay = -0.1 }).Validate()),
        ("train ema_decay below 1", "train_params.ema_decay",
            () => (MnistTrain with { EmaDecay = 1 }).Validate()),
        ("train lpips a known network", "train_params.lpips",
            () => (MnistTrain with { Lpips = "alex" }).Validate()),
        ("train ldm_log_steps positive", "train_params.ldm_log_steps",
            () => (MnistTrain with { LdmLogSteps = 0 }).Validate()),
    ];

    public static TheoryData<string> RuleNames() => new(Rules.Select(r => r.Rule));

    [Theory]
    [MemberData(nameof(RuleNames))]
    public void A_broken_rule_names_its_key(string rule)
    {
        var (_, key, validate) = Rules.Single(r => r.Rule == rule);
        var error = Assert.Throws<ConfigException>(validate);
        Assert.Equal(key, error.Key);
        Assert.StartsWith(key + " ", error.Message);
    }

    [Fact]
    public void The_message_says_what_was_expected_and_what_was_found()
    {
        var error = Assert.Throws<ConfigException>(() => (MnistAutoencoder with { MidChannels = [64, 128] }).Validate());
        Assert.Equal("autoencoder_params.mid_channels[0] must equal down_channels[-1] (128), got 64", error.Message);
    }

    [Fact]
    public void The_reference_configurations_are_valid()
    {
        MnistAutoencoder.Validate();
        CelebHqAutoencoder.Validate();
        MnistLdm.Validate();
        CelebHqLdm.Validate();
        MnistDataset.Validate();
        DefaultDiffusion.Validate();
        MnistTrain.Validate();
    }

    [Fact]
    public void Models_validate_their_config_before_building()
    {
        Assert.Throws<ConfigException>(() => new VqVae(Device.Cpu, 1, MnistAutoencoder with { AttnDown = [false] }));
        Assert.Throws<ConfigException>(() => new Vae(Device.Cpu, 1, MnistAutoencoder with { NumHeads = 0 }));
        Assert.Throws<ConfigException>(() => new UNet(Device.Cpu, 3, MnistLdm with { MidChannels = [256, 128] }));
    }

    /// <summary>The records' properties in snake_case are the config keys (the original's YAML keys).</summary>
    internal static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    [Fact]
    public void Sections_read_from_snake_case_json()
    {
        const string json = """
            { "down_channels": [128, 256, 256, 256], "mid_channels": [256, 256], "down_sample": [false, false, false],
              "attn_down": [true, true, true], "time_emb_dim": 256, "norm_channels": 32, "num_heads": 16,
              "conv_out_channels": 128, "num_down_layers": 2, "num_mid_layers": 2, "num_up_layers": 2 }
            """;
        var ldm = ConfigBinder.FromJson<LdmParams>(JsonDocument.Parse(json).RootElement);
        Assert.Equal(JsonSerializer.Serialize(MnistLdm, SnakeCase), JsonSerializer.Serialize(ldm, SnakeCase));
    }

    [Fact]
    public void Every_property_round_trips_through_its_snake_case_key()
    {
        static void RoundTrip<T>(T value) where T : class, IConfigSectionRecord
        {
            var bound = ConfigBinder.FromJson<T>(JsonSerializer.SerializeToElement(value, SnakeCase), "test");
            Assert.Equal(JsonSerializer.Serialize(value, SnakeCase), JsonSerializer.Serialize(bound, SnakeCase));
        }

        RoundTrip(CelebHqAutoencoder);
        RoundTrip(CelebHqLdm);
        RoundTrip(MnistDataset with { MaxImages = 7, SkipUnreadableImages = true });
        RoundTrip(DefaultDiffusion);
        RoundTrip(MnistTrain with { CheckpointSteps = 3, EmaDecay = 0.99, Lpips = "vgg16", LdmLogSteps = 10 });
        Assert.Contains("autoencoder_img_save_steps", JsonSerializer.Serialize(MnistTrain, SnakeCase));
    }

    [Fact]
    public void A_missing_key_is_named()
    {
        var section = JsonDocument.Parse("""{ "num_timesteps": 1000, "beta_start": 0.0015 }""").RootElement;
        var error = Assert.Throws<ConfigException>(() => ConfigBinder.FromJson<DiffusionParams>(section, "case x"));
        Assert.Equal("diffusion_params.beta_end", error.Key);
        Assert.Equal("case x: diffusion_params.beta_end is missing", error.Message);
    }

    [Fact]
    public void An_unknown_key_in_a_json_section_is_named()
    {
        var json = JsonSerializer.SerializeToElement(
            new { num_timesteps = 1000, beta_start = 0.0015, beta_end = 0.0195, beta_schedule = "linear" });
        var error = Assert.Throws<ConfigException>(() => ConfigBinder.FromJson<DiffusionParams>(json, "case x"));
        Assert.Equal("diffusion_params.beta_schedule", error.Key);
        Assert.StartsWith("case x: diffusion_params.beta_schedule is not a known key", error.Message);
    }

    [Fact]
    public void A_json_section_that_is_not_an_object_is_an_error()
    {
        var section = JsonDocument.Parse("null").RootElement;
        var error = Assert.Throws<ConfigException>(() => ConfigBinder.FromJson<DiffusionParams>(section, "case x"));
        Assert.Equal("diffusion_params", error.Key);
        Assert.Contains("must be an object", error.Message);
    }
}
