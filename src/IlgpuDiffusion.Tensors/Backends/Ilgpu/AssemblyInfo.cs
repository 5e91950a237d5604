using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator emits its kernel tasks into a dynamic assembly of this name; it must see
// the internal kernel parameter structs.
[assembly: InternalsVisibleTo("ILGPURuntime")]
