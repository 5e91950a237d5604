using System.IO.Compression;

namespace IlgpuDiffusion.Tensors.IO;

/// <summary>Reads PyTorch state dicts written by <c>torch.save(model.state_dict())</c> (the zip
/// format of PyTorch ≥ 1.6): <c>&lt;archive&gt;/data.pkl</c> pickles an OrderedDict of tensors whose
/// storages are the entries <c>&lt;archive&gt;/data/&lt;key&gt;</c>. The pickle is interpreted by a
/// restricted unpickler that knows only the handful of torch names a state dict uses and refuses
/// every other global, so a malicious file cannot run code.</summary>
public static class PthReader
{
    private const string RebuildTensor = "torch._utils._rebuild_tensor_v2";
    private const string RebuildParameter = "torch._utils._rebuild_parameter";
    private const string OrderedDict = "collections.OrderedDict";
    // deflate's largest expansion is about 1032:1 (a run of one byte)
    private const long MaxDeflateRatio = 1032;

    // Legacy storage class names; torch still writes these into persistent ids.
    private static readonly Dictionary<string, StoredElementType> StorageTypes = new()
    {
        ["torch.FloatStorage"] = StoredElementType.Float32,
        ["torch.DoubleStorage"] = StoredElementType.Float64,
        ["torch.HalfStorage"] = StoredElementType.Float16,
        ["torch.BFloat16Storage"] = StoredElementType.BFloat16,
        ["torch.LongStorage"] = StoredElementType.Int64,
        ["torch.IntStorage"] = StoredElementType.Int32,
    };

    /// <summary>The state dict's tensors in file order: floating types as float32, integer types
    /// as int32.</summary>
    public static IReadOnlyDictionary<string, HostTensor> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"PyTorch file not found: {path}", path);
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(
                $"{path}: not a zip archive (the legacy torch.save format of PyTorch < 1.6 is not supported)", e);
        }
        using (zip)
        {
            return new Archive(path, zip).ReadStateDict();
        }
    }

    /// <summary>A storage named by a persistent id: its element type, zip key and element count.</summary>
    private sealed record StorageRef(StoredElementType Type, string Key, long ElementCount);

    private sealed class Archive(string path, ZipArchive zip)
    {
        private readonly Dictionary<string, byte[]> _storages = [];
        private string _prefix = "";

        public IReadOnlyDictionary<string, HostTensor> ReadStateDict()
        {
            // The archive's single top-level folder holds data.pkl; its name is free (the file stem).
            var pickleEntry = zip.Entries.FirstOrDefault(e =>
                    e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                ?? throw new InvalidDataException($"{path}: no <archive>/data.pkl entry; not a torch.save zip file");
            _prefix = pickleEntry.FullName[..^"data.pkl".Length];
            var byteOrder = zip.GetEntry(_prefix + "byteorder");
            if (byteOrder is not null && ReadText(byteOrder) != "little")
            {
                throw new InvalidDataException($"{path}: {byteOrder.FullName}: only little-endian storages are supported");
            }

            string context = $"{path}: {pickleEntry.FullName}";
            var unpickler = new RestrictedUnpickler(context,
                (module, name) => ResolveGlobal(module, name, context), (callable, args) => Call(callable, args, context),
                (target, _) => Build(target, context), persistentId => PersistentLoad(persistentId, context));
            var root = unpickler.Load(ReadBytes(pickleEntry));

            if (root is not OrderedDictionary<object, object?> dict)
            {
                throw new InvalidDataException($"{context}: the pickled object is not a state dict");
            }
            var tensors = new OrderedDictionary<string, HostTensor>();
            foreach (var (key, value) in dict)
            {
                if (key is not string name || value is not HostTensor tensor)
                {
                    throw new InvalidDataException($"{context}: state dict entry '{key}' is not a named tensor");
                }
                tensors.Add(name, tensor);
            }
            return tensors;
        }

        private static PickleGlobal ResolveGlobal(string module, string name, string context)
        {
            var global = new PickleGlobal(module, name);
            string fullName = global.ToString();
            return fullName is RebuildTensor or RebuildParameter or OrderedDict || StorageTypes.ContainsKey(fullName)
                ? global
                : throw new InvalidDataException($"{context}: refused pickle global '{fullName}': not part of a state dict");
        }

        private object Call(PickleGlobal callable, object?[] args, string context) =>
            callable.ToString() switch
            {
                OrderedDict when args.Length == 0 => new OrderedDictionary<object, object?>(),
                RebuildTensor => RebuildTensorV2(args, context),
                // _rebuild_parameter(data, requires_grad, backward_hooks): the parameter is its data.
                RebuildParameter when args is [HostTensor data, ..] => data,
                _ => throw new InvalidDataException($"{context}: cannot call {callable} with {args.Length} arguments"),
            };

        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, …)
        private HostTensor RebuildTensorV2(object?[] args, string context)
        {
            if (args is not [StorageRef storage, long offset, object?[] size, object?[] stride, ..])
            {
                throw new InvalidDataException($"{context}: unexpected arguments to {RebuildTensor}");
            }
            if (size.Length != stride.Length)
            {
                throw new InvalidDataException($"{context}: {stride.Length} strides for {size.Length} dimensions");
            }
            var shape = size.Select(dim => dim is long d and >= 0 and <= int.MaxValue
                ? (int)d
                : throw new InvalidDataException($"{context}: bad tensor size [{string.Join(", ", size)}]")).ToArray();
            var strides = stride.Select(s => s as long?
                ?? throw new InvalidDataException($"{context}: bad tensor stride [{string.Join(", ", stride)}]")).ToArray();
            var entryContext = $"{path}: {_prefix}data/{storage.Key}";
            return StoredElements.Decode(storage.Type, LoadStorage(storage, entryContext), shape, offset, strides,
                entryContext);
        }

        private static object? Build(object? target, string context) => target switch
        {
            // An OrderedDict's BUILD state is the state dict's _metadata (module versions); not needed.
            OrderedDictionary<object, object?> => target,
            _ => throw new InvalidDataException($"{context}: BUILD of an unexpected object"),
        };

        // Persistent ids of storages: ('storage', storage_type, key, location, numel).
        private static StorageRef PersistentLoad(object? persistentId, string context)
        {
            if (persistentId is object?[] id && id is ["storage", PickleGlobal type, string key, string, long numel]
                && StorageTypes.TryGetValue(type.ToString(), out var elementType))
            {
                return new StorageRef(elementType, key, numel);
            }
            throw new InvalidDataException($"{context}: unsupported persistent id");
        }

        private byte[] LoadStorage(StorageRef storage, string context)
        {
            if (_storages.TryGetValue(storage.Key, out var cached)) return cached;
            var entry = zip.GetEntry(_prefix + "data/" + storage.Key)
                ?? throw new InvalidDataException($"{context}: storage entry missing from the archive");
            long expected = StoredElements.CheckedByteCount(storage.Type, [storage.ElementCount], context);
            if (entry.Length != expected)
            {
                throw new InvalidDataException(
                    $"{context}: storage holds {entry.Length} bytes, expected {storage.ElementCount} × {storage.Type}");
            }
            var bytes = ReadBytes(entry);
            _storages[storage.Key] = bytes;
            return bytes;
        }

        private byte[] ReadBytes(ZipArchiveEntry entry)
        {
            CheckDeclaredLength(entry);
            var bytes = new byte[entry.Length];
            try
            {
                using var stream = entry.Open();
                stream.ReadExactly(bytes);
            }
            // Open refuses compression methods it lacks (LZMA, bzip2) with InvalidDataException
            catch (Exception e) when (e is EndOfStreamException or InvalidDataException or NotSupportedException)
            {
                throw new InvalidDataException($"{path}: {entry.FullName}: cannot read the entry: {e.Message}", e);
            }
            return bytes;
        }

        /// <summary>An entry's declared size is checked against what its compressed bytes can hold before
        /// anything is allocated for it: stored entries hold what they occupy, deflate expands at most
        /// <see cref="MaxDeflateRatio"/> times.</summary>
        private void CheckDeclaredLength(ZipArchiveEntry entry)
        {
            long fileLength = new FileInfo(path).Length;
            long compressed = entry.CompressedLength;
            long plausible = compressed > (StoredElements.MaxTensorBytes - 1024) / MaxDeflateRatio
                ? StoredElements.MaxTensorBytes
                : compressed * MaxDeflateRatio + 1024;
            if (compressed > fileLength || entry.Length > plausible || entry.Length > StoredElements.MaxTensorBytes)
            {
                throw new InvalidDataException(
                    $"{path}: {entry.FullName}: declares {entry.Length} bytes from {compressed} compressed bytes "
                    + $"in a file of {fileLength}: the archive is damaged or forged");
            }
        }

        private string ReadText(ZipArchiveEntry entry) => System.Text.Encoding.ASCII.GetString(ReadBytes(entry)).Trim();
    }
}
