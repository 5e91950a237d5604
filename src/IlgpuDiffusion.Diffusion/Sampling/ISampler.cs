using IlgpuDiffusion.Tensors;

namespace IlgpuDiffusion.Diffusion.Sampling;

/// <summary>Runs a reverse diffusion from Gaussian noise with a noise predictor ε̂(x_t, t).</summary>
public interface ISampler
{
    /// <summary>The timesteps visited, from the noisiest down to 0.</summary>
    IReadOnlyList<int> Timesteps { get; }

    /// <summary>Standard deviation of the fresh noise added when stepping from t (0: none is drawn).</summary>
    double Sigma(int t);

    /// <summary>One reverse step from x_t with the predicted noise; <paramref name="z"/> is the Gaussian draw
    /// (ignored where <see cref="Sigma"/> is 0). Returns x at the next visited timestep and the clamped x_0 estimate.</summary>
    (Tensor XPrev, Tensor X0Pred) Step(Tensor xt, Tensor noisePred, int t, Tensor? z);

    /// <summary>Denoises <paramref name="xT"/> (a draw from N(0, I)) and returns the final x_0; the
    /// predictor receives x_t and t. Fresh Gaussian draws come from <paramref name="generator"/>.</summary>
    Tensor Sample(Tensor xT, Func<Tensor, int, Tensor> predictNoise, Generator generator);
}

internal static class SamplingLoop
{
    /// <summary>Applies <paramref name="step"/> for each timestep without recording a graph; each step's
    /// temporaries are released as soon as the next x is kept.</summary>
    public static Tensor Run(Tensor xT, IReadOnlyList<int> timesteps, Func<Tensor, int, Tensor> step)
    {
        using var noGrad = Autograd.NoGrad();
        var x = xT;
        foreach (int t in timesteps)
        {
            using var scope = new TensorScope();
            var next = scope.Keep(step(x, t));
            if (x != xT) x.Dispose();
            x = next;
        }
        return x;
    }
}
