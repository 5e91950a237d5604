using System.Globalization;

namespace IlgpuDiffusion.Diffusion.Training;

/// <summary>
/// One CSV row per logged step (step, epoch, then one column per loss term), appended and flushed as
/// it goes so a killed run keeps its history; on resume the rows after the resumed step are dropped so
/// the file stays one consistent curve. Also keeps the series in memory for the loss plot.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    private readonly string[] _columns;
    private readonly StreamWriter _writer;
    private readonly Dictionary<string, List<(long Step, double Value)>> _series = new();

    public MetricsLog(string path, IReadOnlyList<string> columns, long resumeAfterStep = -1)
    {
        Path = path;
        _columns = columns.ToArray();
        foreach (var c in _columns) _series[c] = new List<(long, double)>();
        var kept = new List<string>();
        if (resumeAfterStep >= 0 && File.Exists(path))
        {
            var lines = File.ReadAllLines(path);
            if (lines.Length > 0 && lines[0] == Header)
                kept.AddRange(lines.Skip(1).Where(l => RowStep(l) is { } s && s <= resumeAfterStep));
        }
        _writer = new StreamWriter(path, append: false) { AutoFlush = true };
        _writer.WriteLine(Header);
        foreach (var line in kept)
        {
            _writer.WriteLine(line);
            Remember(line);
        }
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, List<(long Step, double Value)>> Series => _series;

    private string Header => "step,epoch," + string.Join(',', _columns);

    public void Append(long step, int epoch, IReadOnlyDictionary<string, double> values)
    {
        string line = string.Join(',', new[] { step.ToString(CultureInfo.InvariantCulture), epoch.ToString(CultureInfo.InvariantCulture) }
            .Concat(_columns.Select(c => values.TryGetValue(c, out var v) ? v.ToString("R", CultureInfo.InvariantCulture) : "")));
        _writer.WriteLine(line);
        Remember(line);
    }

    private void Remember(string line)
    {
        var cells = line.Split(',');
        long step = long.Parse(cells[0], CultureInfo.InvariantCulture);
        for (int i = 0; i < _columns.Length && i + 2 < cells.Length; i++)
            if (double.TryParse(cells[i + 2], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                _series[_columns[i]].Add((step, v));
    }

    private static long? RowStep(string line) =>
        long.TryParse(line.Split(',')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : null;

    public void Dispose() => _writer.Dispose();
}
