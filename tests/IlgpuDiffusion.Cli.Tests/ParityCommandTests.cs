using System.Text.Json;
using System.Text.Json.Nodes;
using IlgpuDiffusion.Tensors.IO;

namespace IlgpuDiffusion.Cli.Tests;

public class ParityCommandTests
{
    /// <summary>A fixture folder holding only the named cases of the reference folder (and its own manifest).</summary>
    private static string FolderWith(string name, params string[] cases)
    {
        string folder = Directory.CreateTempSubdirectory("ildm-parity-" + name).FullName;
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.ParityFolder, "manifest.json")))!.AsArray();
        var kept = new JsonArray();
        foreach (var entry in manifest)
            if (cases.Contains((string)entry!["case"]!))
            {
                kept.Add(entry.DeepClone());
                File.Copy(Path.Combine(Fixtures.ParityFolder, (string)entry["file"]!), Path.Combine(folder, (string)entry["file"]!));
            }
        File.WriteAllText(Path.Combine(folder, "manifest.json"), kept.ToJsonString());
        return folder;
    }

    [Fact]
    public void Passing_cases_print_one_line_each_and_exit_zero()
    {
        var folder = FolderWith("pass", "linear", "conv2d_k4_s2_p1", "adam");
        var result = Ildm.Run("parity", "--fixtures", folder, "--device", "cpu");
        Assert.True(result.ExitCode == 0, result.ToString());
        foreach (var c in new[] { "linear", "conv2d_k4_s2_p1", "adam" })
            Assert.Matches($@"(?m)^{c}\s+pass\s+worst rel L2", result.Output);
        Assert.Contains("3 passed, 0 failed", result.Output);
    }

    [Fact]
    public void A_wrong_reference_value_fails_the_case_and_the_exit_code()
    {
        var folder = FolderWith("fail", "linear", "activations");
        string file = Path.Combine(folder, "linear.safetensors");
        var tensors = SafeTensors.Read(file).ToDictionary(kv => kv.Key, kv => kv.Value);
        var y = tensors["y"];
        var changed = (float[])y.Floats!.Clone();
        changed[0] += 1f;
        tensors["y"] = HostTensor.FromFloats(y.Shape, changed);
        SafeTensors.Write(file, tensors);

        var result = Ildm.Run("parity", "--fixtures", folder, "--device", "cpu");
        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"(?m)^linear\s+FAIL", result.Output);
        Assert.Matches(@"(?m)^activations\s+pass", result.Output);
        Assert.Contains("1 passed, 1 failed", result.Output);
    }

    [Fact]
    public void A_missing_fixture_folder_is_a_clear_error()
    {
        var result = Ildm.Run("parity", "--fixtures", "/no/such/folder", "--device", "cpu");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("manifest.json", result.Error);
        Assert.Contains("/no/such/folder", result.Error);
    }

    [Fact]
    public void An_unknown_device_lists_the_present_ones()
    {
        var result = Ildm.Run("parity", "--fixtures", Fixtures.ParityFolder, "--device", "tpu");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("tpu", result.Error);
        Assert.Contains("cpu", result.Error);
        Assert.Contains("ilgpu-cpu", result.Error);
    }

    /// <summary>On a device without float64 (rusticl's llvmpipe in CI) the default float64 accumulation runs in
    /// float-float, and the first line says so.</summary>
    [SkippableFact]
    public void Float64_accumulation_runs_in_float_float_on_a_device_without_float64()
    {
        var device = TestDevices.Open("opencl");
        Skip.If(device.Info.Float64, $"{device.Name} has float64");
        var result = Ildm.Run("parity", "--fixtures", Fixtures.ParityFolder, "--device", "opencl", "--case", "linear");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("float64 accumulation (float-float, device has no fp64)", result.Output);
        Assert.Matches(@"(?m)^linear\S*\s+pass", result.Output);
    }

    [Fact]
    public void Devices_lists_cpu_and_ilgpu_cpu()
    {
        var result = Ildm.Run("devices");
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"(?m)^cpu\s", result.Output);
        Assert.Matches(@"(?m)^ilgpu-cpu\s", result.Output);
    }
}
