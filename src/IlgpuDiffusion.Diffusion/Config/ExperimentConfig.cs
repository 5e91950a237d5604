using Microsoft.Extensions.Configuration;

namespace IlgpuDiffusion.Diffusion.Config;

/// <summary>
/// A whole experiment configuration: the five sections of a JSON config file (the keys of the original
/// project's YAML configs), bound and validated. <see cref="Source"/> is the file it came from.
/// </summary>
public sealed record ExperimentConfig(DatasetParams Dataset, DiffusionParams Diffusion, AutoencoderParams Autoencoder,
    LdmParams Ldm, TrainParams Train, string Source)
{
    public static IReadOnlyList<string> Sections { get; } =
        [DatasetParams.Section, DiffusionParams.Section, AutoencoderParams.Section, LdmParams.Section, TrainParams.Section];

    /// <summary>
    /// Reads the JSON config file at <paramref name="path"/>, applies <paramref name="overrides"/> in order,
    /// binds every section and validates it. A missing file is a <see cref="FileNotFoundException"/>;
    /// everything else wrong is a <see cref="ConfigException"/> naming <c>section.key</c> or, when no single
    /// key is to blame (malformed JSON or override), an <see cref="InvalidDataException"/>; either message
    /// starts with <paramref name="path"/>.
    /// </summary>
    /// <param name="overrides">
    /// <c>section:key=value</c> (or <c>section.key=value</c>). <c>section:key:2=value</c> sets one element of
    /// an existing list; <c>section:key=[16,32,32]</c>, or a comma-separated value for a key that is a list in
    /// the file (<c>true,false</c>), replaces the whole list. Keys are checked when the section is bound,
    /// so an optional key the file leaves out can be set too, and a misspelt one is an unknown key.
    /// </param>
    public static ExperimentConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file {path} not found", path);
        using var json = File.OpenRead(path);
        return Load(json, path, overrides);
    }

    /// <summary>As <see cref="Load(string, IEnumerable{string}?)"/>, from JSON that is not a file (an embedded
    /// default); <paramref name="source"/> names it in errors.</summary>
    public static ExperimentConfig Load(Stream json, string source, IEnumerable<string>? overrides = null)
    {
        // overrides edit the flattened key/value pairs rather than layering a second provider on top, so that
        // a shorter list replaces a longer one instead of keeping its tail
        var values = ConfigJson.Read(json, source).AsEnumerable().ToDictionary(StringComparer.OrdinalIgnoreCase);
        var setBy = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase); // section.key → the override that set it
        foreach (var item in overrides ?? []) setBy[Override(values, item, source)] = item;
        try
        {
            return BindSections(values, source);
        }
        catch (ConfigException e) when (e.Key.Split(", ").Select(k => k.Split('[')[0]).FirstOrDefault(setBy.ContainsKey) is { } key)
        {
            // the value came from the command line, not from the file
            throw new ConfigException(e.Key, e.Problem, $"--set {setBy[key]}", e);
        }
    }

    private static ExperimentConfig BindSections(Dictionary<string, string?> values, string source)
    {
        var root = new ConfigurationBuilder().AddInMemoryCollection(values).Build();

        var unknown = root.GetChildren().Select(c => c.Key).FirstOrDefault(k => !Sections.Contains(k, StringComparer.OrdinalIgnoreCase));
        if (unknown is not null)
            throw new ConfigException(unknown, $"is not a known section (known: {string.Join(", ", Sections)})", source);

        T Bind<T>() where T : class, IConfigSectionRecord
        {
            var section = new ConfigSection(root, T.Section, source);
            section.RequireObject();
            var bound = ConfigBinder.Bind<T>(section);
            try
            {
                bound.Validate();
            }
            catch (ConfigException e)
            {
                throw e.In(source);
            }
            return bound;
        }

        var config = new ExperimentConfig(
            Bind<DatasetParams>(), Bind<DiffusionParams>(), Bind<AutoencoderParams>(), Bind<LdmParams>(), Bind<TrainParams>(), source);
        config.CheckImageSize();
        return config;
    }

    /// <summary>The autoencoder halves im_size at each of its down-samplings and the UNet halves the latent at each of
    /// its own, then doubles it back: every halving must be exact, so im_size must be divisible by 2^(both counts).</summary>
    private void CheckImageSize()
    {
        int autoencoderHalvings = Autoencoder.DownSample.Count(d => d), unetHalvings = Ldm.DownSample.Count(d => d);
        int divisor = 1 << (autoencoderHalvings + unetHalvings), size = Dataset.ImSize;
        if (size % divisor == 0) return;
        int below = size / divisor * divisor, above = below + divisor;
        string nearest = below > 0 ? $"{below} or {above}" : $"{above}";
        throw new ConfigException($"{DatasetParams.Section}.im_size",
            $"must be divisible by {divisor} = 2^{autoencoderHalvings + unetHalvings} ({autoencoderHalvings} down-sampling(s) in "
            + $"{AutoencoderParams.Section}.down_sample and {unetHalvings} in {LdmParams.Section}.down_sample), got {size}; "
            + $"use {nearest}, or resize the images", Source);
    }

    /// <summary>Applies one <c>section:key=value</c> override to the flattened configuration (keys joined by ':',
    /// list elements numbered).</summary>
    /// <returns>The dotted <c>section.key</c> it sets.</returns>
    private static string Override(Dictionary<string, string?> values, string item, string source)
    {
        int equals = item.IndexOf('=');
        var parts = equals < 0 ? [] : item[..equals].Trim().Replace('.', ':').Split(':');
        int index = 0;
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace)
            || (parts.Length == 3 && !int.TryParse(parts[2], out index)))
            throw new InvalidDataException(
                $"{source}: malformed override '{item}' (expected section:key=value, section:key:index=value or section:key=[a,b,...])");

        var (section, key) = (parts[0], $"{parts[0]}.{parts[1]}");
        if (!Sections.Contains(section, StringComparer.OrdinalIgnoreCase))
            throw new ConfigException(section, $"is not a known section (override '{item}'; known: {string.Join(", ", Sections)})", source);

        var value = item[(equals + 1)..].Trim();
        var path = $"{parts[0]}:{parts[1]}";
        if (parts.Length == 3)
        {
            var element = $"{path}:{index}";
            if (!values.ContainsKey(element))
                throw new ConfigException($"{key}[{index}]",
                    $"does not exist (override '{item}'); to change a list's length set the whole list, {path}=[a,b,...]", source);
            values[element] = value;
            return key;
        }

        var children = values.Keys.Where(k => k.StartsWith(path + ":", StringComparison.OrdinalIgnoreCase)).ToList();
        bool bracketed = value.StartsWith('[') && value.EndsWith(']');
        foreach (var child in children) values.Remove(child);
        if (!bracketed && children.Count == 0)
        {
            values[path] = value;
            return key;
        }
        // a list: the key itself has no value (an empty list stays present but empty), its elements are path:0, path:1, ...
        values[path] = null;
        var list = bracketed ? value[1..^1] : value;
        if (list.Trim().Length != 0)
        {
            var elements = list.Split(',');
            for (int i = 0; i < elements.Length; i++) values[$"{path}:{i}"] = elements[i].Trim();
        }
        return key;
    }
}
