namespace IlgpuDiffusion.Tensors; internal static class Placeholder {}
