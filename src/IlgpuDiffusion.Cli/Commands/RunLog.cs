using System.Text;

namespace IlgpuDiffusion.Cli.Commands;

/// <summary>
/// The log file of a run: from construction until disposal everything written to Console.Out and Console.Error still
/// goes there and also into the file that <see cref="Attach"/> names (what came before is written first). A progress
/// bar redrawn in place ('\r') leaves only its last state of each line in the file; <see cref="Detail"/> writes what
/// only the file should hold (an exception's type and stack trace).
/// </summary>
internal sealed class RunLog : IDisposable
{
    private readonly TextWriter _consoleOut = Console.Out, _consoleError = Console.Error;
    private readonly object _gate = new();
    private readonly StringBuilder _beforeAttach = new(), _line = new();
    private StreamWriter? _file;

    public RunLog()
    {
        Console.SetOut(TextWriter.Synchronized(new Tee(this, _consoleOut)));
        Console.SetError(TextWriter.Synchronized(new Tee(this, _consoleError)));
    }

    public string? Path { get; private set; }

    /// <summary>Appends from now on to <paramref name="path"/>, starting with <paramref name="header"/>.</summary>
    public void Attach(string path, string header)
    {
        lock (_gate)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
            _file = new StreamWriter(path, append: true) { AutoFlush = true };
            Path = path;
            _file.WriteLine(header);
            _file.Write(_beforeAttach.ToString());
            _beforeAttach.Clear();
        }
    }

    public void Detail(string text) => Append(text + Environment.NewLine);

    /// <summary>Collects whole lines: '\r' starts the line over (an in-place redraw), ANSI erase-line codes are dropped.</summary>
    private void Append(string text)
    {
        lock (_gate)
        {
            foreach (char c in text)
            {
                if (c == '\r') _line.Clear();
                else if (c == '\n') WriteLine();
                else _line.Append(c);
            }
        }
    }

    private void WriteLine()
    {
        string line = _line.Replace("\u001b[K", "").ToString();
        _line.Clear();
        if (_file != null) _file.WriteLine(line);
        else _beforeAttach.AppendLine(line);
    }

    public void Dispose()
    {
        Console.SetOut(_consoleOut);
        Console.SetError(_consoleError);
        lock (_gate)
        {
            if (_line.Length > 0) WriteLine();
            _file?.Dispose();
            _file = null;
        }
    }

    /// <summary>Writes to the console and to the log.</summary>
    private sealed class Tee(RunLog log, TextWriter console) : TextWriter
    {
        public override Encoding Encoding => console.Encoding;

        public override void Write(char value)
        {
            console.Write(value);
            log.Append(value.ToString());
        }

        public override void Write(string? value)
        {
            console.Write(value);
            if (value != null) log.Append(value);
        }

        public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));

        public override void WriteLine(string? value) => Write(value + NewLine);

        public override void Flush() => console.Flush();
    }
}
