using IlgpuDiffusion.Diffusion.Evaluation;

namespace IlgpuDiffusion.Diffusion.Tests.Evaluation;

public class RequestedClassesTests
{
    [Fact]
    public void Shares_count_only_the_images_that_asked_for_a_class()
    {
        int[] predicted = [0, 1, 1, 2, 2, 0];
        int?[] requested = [0, 1, 2, 2, null, 0];
        var (overall, perClass) = RequestedClasses.Shares(predicted, requested, classes: 4);
        Assert.Equal(4.0 / 5, overall, 12);
        Assert.Equal([1.0, 1.0, 0.5, null], perClass);
    }

    [Fact]
    public void A_saved_list_loads_and_a_class_outside_the_names_is_refused_naming_the_file()
    {
        string folder = Directory.CreateTempSubdirectory("requested-").FullName;
        try
        {
            new RequestedClasses(["shirt", "sneaker"], new Dictionary<string, int> { ["a.png"] = 1, ["b.png"] = 0 }).Save(folder);
            var loaded = RequestedClasses.Load(folder)!;
            Assert.Equal(["shirt", "sneaker"], loaded.ClassNames);
            Assert.Equal(1, loaded.Files["a.png"]);
            File.WriteAllText(Path.Combine(folder, RequestedClasses.FileName), """{"class_names": ["x"], "files": {"a.png": 3}}""");
            var error = Assert.Throws<InvalidDataException>(() => RequestedClasses.Load(folder));
            Assert.Contains(RequestedClasses.FileName, error.Message);
            Assert.Contains("a.png", error.Message);
            Assert.Null(RequestedClasses.Load(Path.Combine(folder, "missing")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
