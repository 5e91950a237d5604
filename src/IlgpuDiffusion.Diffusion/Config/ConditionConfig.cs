namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// <c>ldm_params.condition_config</c>, the reference's conditioning of the UNet: <c>condition_types</c> lists any of
/// <c>class</c>, <c>text</c>, <c>image</c>, and each listed type needs its <c>*_condition_config</c> object.
/// </summary>
public sealed record ConditionConfig
{
    // One property per key (ConfigBinder reads them by name): every section record has this shape on purpose.
    public required string[] ConditionTypes { get; init; }
    public ClassConditionConfig? ClassConditionConfig { get; init; }
    public TextConditionConfig? TextConditionConfig { get; init; }
    public ImageConditionConfig? ImageConditionConfig { get; init; }

    public const string Key = "condition_config";
    public const string Class = "class", Text = "text", Image = "image";
    public static IReadOnlyList<string> Types { get; } = [Class, Text, Image];

    /// <summary>The class settings when <c>class</c> is listed, else null (a sub-config of an unlisted type is
    /// ignored, as in the reference).</summary>
    public ClassConditionConfig? ClassCondition => ConditionTypes.Contains(Class) ? ClassConditionConfig : null;
    public TextConditionConfig? TextCondition => ConditionTypes.Contains(Text) ? TextConditionConfig : null;
    public ImageConditionConfig? ImageCondition => ConditionTypes.Contains(Image) ? ImageConditionConfig : null;

    internal void Validate(string parent)
    {
        string section = $"{parent}.{Key}";
        var check = new ConfigCheck(section);
        if (ConditionTypes.Length == 0) throw check.Fail("condition_types", $"must list at least one of {string.Join(", ", Types)}");
        for (int i = 0; i < ConditionTypes.Length; i++)
        {
            if (!Types.Contains(ConditionTypes[i]))
                throw check.Fail($"condition_types[{i}]", $"must be one of {string.Join(", ", Types)}, got '{ConditionTypes[i]}'");
            if (Array.IndexOf(ConditionTypes, ConditionTypes[i]) != i)
                throw check.Fail($"condition_types[{i}]", $"lists '{ConditionTypes[i]}' twice");
        }
        void Require(string type, object? settings)
        {
            if (ConditionTypes.Contains(type) && settings is null)
                throw check.Fail($"{type}_condition_config", $"is missing (condition_types lists '{type}')");
        }
        Require(Class, ClassConditionConfig);
        Require(Text, TextConditionConfig);
        Require(Image, ImageConditionConfig);
        ClassCondition?.Validate(new ConfigCheck($"{section}.class_condition_config"));
        TextCondition?.Validate(new ConfigCheck($"{section}.text_condition_config"));
        ImageCondition?.Validate(new ConfigCheck($"{section}.image_condition_config"));
    }

    internal static void ValidateDropProbability(ConfigCheck check, double probability)
    {
        if (!(probability >= 0 && probability <= 1)) throw check.Fail("cond_drop_prob", $"must be in [0, 1], got {probability}");
    }
}

/// <summary><c>class_condition_config</c>: a class embedding table of num_classes rows; in training a sample's
/// class is dropped (its one-hot row zeroed) with probability cond_drop_prob.</summary>
public sealed record ClassConditionConfig
{
    public required int NumClasses { get; init; }
    public required double CondDropProb { get; init; }

    internal void Validate(ConfigCheck check)
    {
        check.Positive("num_classes", NumClasses);
        ConditionConfig.ValidateDropProbability(check, CondDropProb);
    }
}

/// <summary><c>text_condition_config</c>: cross-attention on a (tokens, text_embed_dim) context. The text encoder
/// (<c>text_embed_model</c>: clip or bert in the reference) is the user's: contexts come precomputed.</summary>
public sealed record TextConditionConfig
{
    public required string TextEmbedModel { get; init; }
    public required bool TrainTextEmbedModel { get; init; }
    public required int TextEmbedDim { get; init; }
    public required double CondDropProb { get; init; }

    internal void Validate(ConfigCheck check)
    {
        check.NotEmpty("text_embed_model", TextEmbedModel);
        if (TrainTextEmbedModel)
            throw check.Fail("train_text_embed_model",
                "must be false: the text encoder is not part of this project (contexts are precomputed)");
        check.Positive("text_embed_dim", TextEmbedDim);
        ConditionConfig.ValidateDropProbability(check, CondDropProb);
    }
}

/// <summary><c>image_condition_config</c>: a mask of image_condition_input_channels channels (h × w), mapped to
/// image_condition_output_channels by a 1×1 convolution and concatenated to the UNet's input.</summary>
public sealed record ImageConditionConfig
{
    public required int ImageConditionInputChannels { get; init; }
    public required int ImageConditionOutputChannels { get; init; }
    public required int ImageConditionH { get; init; }
    public required int ImageConditionW { get; init; }
    public required double CondDropProb { get; init; }

    internal void Validate(ConfigCheck check)
    {
        check.Positive("image_condition_input_channels", ImageConditionInputChannels);
        check.Positive("image_condition_output_channels", ImageConditionOutputChannels);
        check.Positive("image_condition_h", ImageConditionH);
        check.Positive("image_condition_w", ImageConditionW);
        ConditionConfig.ValidateDropProbability(check, CondDropProb);
    }
}
