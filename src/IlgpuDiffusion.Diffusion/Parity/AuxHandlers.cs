using System.Globalization;
using System.Text.Json;
using IlgpuDiffusion.Diffusion.Models;
using IlgpuDiffusion.Diffusion.Sampling;
using IlgpuDiffusion.Tensors;
using IlgpuDiffusion.Tensors.Parity;

namespace IlgpuDiffusion.Diffusion.Parity;

/// <summary>Parity handlers for the discriminator, LPIPS (VGG16) and DDPM schedule cases; every
/// hyper-parameter comes from the case entry, with the reference's values where a field is absent.</summary>
public static class AuxHandlers
{
    public static IReadOnlyList<IParityHandler> All { get; } =
    [
        new ParityHandler("discriminator_", Discriminator),
        new ParityHandler("lpips_vgg16", LpipsVgg16),
        new ParityHandler("ddpm_linear_schedule", DdpmSchedule),
    ];

    /// <summary>Training mode: BatchNorm normalises with batch statistics and updates its running ones.</summary>
    private static IReadOnlyDictionary<string, Tensor> Discriminator(ParityCase c, Device device)
    {
        using var model = new Models.Discriminator(device, c.Int("im_channels"), Ints(c, "conv_channels"),
            Ints(c, "kernels"), Ints(c, "strides"), Ints(c, "paddings"));
        return Detached(c, ModuleCase.Compute(c, device, model,
            inputs => new Dictionary<string, Tensor> { ["logits"] = model.Forward(inputs["x"]) }));
    }

    /// <summary>Inputs come in pairs NAME0 / NAME1; the pair "in" gives output "distance", any other "distance_NAME".</summary>
    private static IReadOnlyDictionary<string, Tensor> LpipsVgg16(ParityCase c, Device device)
    {
        using var model = new VggLpips(device);
        model.SetParametersRequireGrad(true); // the fixture records gradient summaries of every parameter
        return Detached(c, ModuleCase.Compute(c, device, model, inputs => inputs.Keys
            .Where(k => k.EndsWith('0') && inputs.ContainsKey(k[..^1] + "1"))
            .ToDictionary(
                k => k[..^1] == "in" ? "distance" : "distance_" + k[..^1],
                k => model.Forward(inputs[k], inputs[k[..^1] + "1"]))));
    }

    /// <summary>Schedule tables, add_noise at t_add, and one DDPM step for every stored stepN.*.</summary>
    private static IReadOnlyDictionary<string, Tensor> DdpmSchedule(ParityCase c, Device device)
    {
        var schedule = new LinearNoiseSchedule(c.Int("num_timesteps"), Double(c, "beta_start"), Double(c, "beta_end"));
        var sampler = new DdpmSampler(schedule);
        var result = new Dictionary<string, Tensor>
        {
            ["betas"] = Table(schedule.Betas, device),
            ["alphas"] = Table(schedule.Alphas, device),
            ["alpha_cum_prod"] = Table(schedule.AlphaCumProd, device),
        };
        if (c.Has("xt"))
        {
            var t = c.Tensor("t_add");
            var steps = t.Ints ?? t.Floats!.Select(v => (int)MathF.Round(v)).ToArray();
            result["xt"] = schedule.AddNoise(c.Load("x0", device), c.Load("noise", device), steps);
        }
        var stepXtKeys = c.Tensors.Keys
            .Where(k => k.StartsWith("step", StringComparison.Ordinal) && k.EndsWith(".xt", StringComparison.Ordinal));
        foreach (var key in stepXtKeys)
        {
            string prefix = key[..^".xt".Length];
            int step = int.Parse(prefix["step".Length..], CultureInfo.InvariantCulture);
            var (xPrev, x0) = sampler.Step(c.Load(key, device), c.Load(prefix + ".noise_pred", device), step,
                c.Has(prefix + ".z") ? c.Load(prefix + ".z", device) : null);
            result[prefix + ".x_prev"] = xPrev;
            result[prefix + ".x0_pred"] = x0;
        }
        return result;
    }

    private static Tensor Table(double[] values, Device device) =>
        Tensor.FromArray(values.Select(v => (float)v).ToArray(), [values.Length], device);

    private static int[]? Ints(ParityCase c, string field) =>
        c.Entry.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray()
            : null;

    private static double Double(ParityCase c, string field) =>
        c.Entry.TryGetProperty(field, out var v)
            ? v.GetDouble()
            : throw new InvalidDataException($"manifest.json: case '{c.Name}' has no field '{field}'");

    /// <summary>New handles on the results' memory, which outlive the model's own (buffers and gradients
    /// are released with it; the memory is reference counted). The fixtures store 0-d tensors
    /// (num_batches_tracked) with shape [1].</summary>
    private static Dictionary<string, Tensor> Detached(ParityCase c, Dictionary<string, Tensor> computed) =>
        computed.ToDictionary(kv => kv.Key, kv =>
        {
            var value = kv.Value.Detach();
            return value.Rank == 0 ? value.Reshape(c.Tensor(kv.Key).Shape) : value;
        });
}
