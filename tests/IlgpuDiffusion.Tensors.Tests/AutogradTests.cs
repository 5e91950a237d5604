namespace IlgpuDiffusion.Tensors.Tests;

internal static class TestTensors
{
    /// <summary>A cpu tensor that requires gradients.</summary>
    public static Tensor Leaf(float[] values, params int[] shape)
    {
        var t = Tensor.FromArray(values, shape);
        t.RequiresGrad = true;
        return t;
    }
}

public class AutogradTests
{
    [Fact]
    public void Gradients_accumulate_across_backward_calls_and_reused_inputs()
    {
        var x = TestTensors.Leaf([1f, 2f, 3f], 3);
        (x * x).Sum().Backward();       // 2x
        (x + x).Sum().Backward();       // + 2 (x used twice in one graph)
        Assert.Equal(new[] { 4f, 6f, 8f }, x.Grad!.ToArray());
    }

    [Fact]
    public void Backward_needs_a_scalar_or_an_explicit_gradient()
    {
        var x = TestTensors.Leaf([1f, 2f], 2);
        var y = x * 3f;
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("[2]", e.Message);
        y.Backward(Tensor.FromArray([1f, -1f], [2]));
        Assert.Equal(new[] { 3f, -3f }, x.Grad!.ToArray());
    }

    [Fact]
    public void The_graph_is_freed_after_backward()
    {
        var x = TestTensors.Leaf([1f, 2f], 2);
        var loss = x.Exp().Sum();
        loss.Backward();
        var e = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("second time", e.Message);
    }

    [Fact]
    public void No_grad_scope_and_detach_record_nothing()
    {
        var x = TestTensors.Leaf([1f, 2f], 2);
        using (Autograd.NoGrad())
        {
            var y = x * 2f;
            Assert.False(y.RequiresGrad);
        }
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        var z = (d * x).Sum();
        z.Backward();
        Assert.Equal(new[] { 1f, 2f }, x.Grad!.ToArray()); // d is a constant
    }

    [Fact]
    public void Requires_grad_cannot_be_cleared_on_an_op_result()
    {
        var x = TestTensors.Leaf([1f], 1);
        var y = x * 2f;
        Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
    }

    [Fact]
    public void Shape_errors_name_the_op_and_both_shapes()
    {
        var a = Tensor.Zeros([2, 3]);
        var b = Tensor.Zeros([4, 3]);
        var e = Assert.Throws<ArgumentException>(() => a + b);
        Assert.Contains("add", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4, 3]", e.Message);
        var m = Assert.Throws<ArgumentException>(() => a.Matmul(b));
        Assert.Contains("matmul", m.Message);
    }

    [Fact]
    public void Shares_of_a_draw_are_the_slices_of_the_whole_batch_draw()
    {
        // A batch of 5 items with 3 normals and 1 integer each, split over ranks as items [0, 2) and [2, 5).
        var whole = new Generator(42, 100);
        var normals = Tensor.Randn([5, 3], whole).ToArray();
        var ints = whole.NextInts(5, 1000);
        foreach (var (start, count) in new[] { (0, 2), (2, 3) })
        {
            var rank = new Generator(42, 100);
            using (rank.DrawShare(start, count, 5))
            {
                Assert.Equal(normals[(start * 3)..((start + count) * 3)], Tensor.Randn([count, 3], rank).ToArray());
                Assert.Equal(ints[start..(start + count)], rank.NextInts(count, 1000));
                Assert.Throws<InvalidOperationException>(() => rank.NextInts(count + 1, 1000)); // not a whole share
            }
            Assert.Equal(whole.Offset, rank.Offset);
        }
    }

    [Fact]
    public void Random_tensors_depend_only_on_seed_and_position()
    {
        var g1 = new Generator(42);
        var a = Tensor.Randn([10], g1).ToArray();
        var b = Tensor.Randn([5], g1).ToArray();
        var whole = Tensor.Randn([15], new Generator(42)).ToArray();
        Assert.Equal(whole, a.Concat(b).ToArray());
        Assert.NotEqual(whole, Tensor.Randn([15], new Generator(43)).ToArray());
        var u = Tensor.Rand([10000], new Generator(1)).ToArray();
        Assert.All(u, v => Assert.InRange(v, 0f, 1f));
        var n = Tensor.Randn([20000], new Generator(7)).ToArray();
        double mean = n.Average(), variance = n.Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(variance, 0.95, 1.05);
    }

    [Fact]
    public void Argmax_and_argmin_return_first_index_on_ties()
    {
        var x = Tensor.FromArray([1f, 3f, 3f, 0f, 0f, -1f], [2, 3]);
        Assert.Equal(new[] { 1, 0 }, x.ArgMax(1).ToIntArray());
        Assert.Equal(new[] { 0, 2 }, x.ArgMin(1).ToIntArray());
        Assert.Equal(new[] { 0, 0, 0 }, x.ArgMax(0).ToIntArray());
    }
}

/// <summary>Reads the cpu allocator's global counters, so it runs alone.</summary>
[CollectionDefinition("allocator", DisableParallelization = true)]
public class AllocatorCollection { }

[Collection("allocator")]
public class AllocatorTests
{
    [Fact]
    public void A_scope_returns_its_tensors_to_the_allocator_and_keeps_what_is_kept()
    {
        var device = Device.Cpu;
        var w = TestTensors.Leaf(Enumerable.Repeat(0.5f, 4096).ToArray(), 64, 64);
        long before = device.Allocator.BytesInUse;
        Tensor kept;
        using (var scope = new TensorScope())
        {
            var y = w.Matmul(w).Tanh().Sum();
            y.Backward();
            kept = scope.Keep(w.Matmul(w));
            Assert.True(device.Allocator.BytesInUse > before);
        }
        Assert.False(kept.IsDisposed);
        Assert.NotNull(w.Grad); // leaf gradients belong to no scope
        Assert.Equal(before + kept.Storage.Buffer.Length * 4L + w.Grad!.Storage.Buffer.Length * 4L, device.Allocator.BytesInUse);
        kept.Dispose();
    }

    [Fact]
    public void A_stage_releases_what_no_rule_saved_at_once_and_the_saved_after_backward()
    {
        var device = Device.Cpu;
        var w = TestTensors.Leaf(Enumerable.Repeat(0.01f, 4096).ToArray(), 64, 64);
        long Bytes(Tensor t) => t.Storage.Buffer.Length * 4L;
        long before = device.Allocator.BytesInUse;
        using var scope = new TensorScope();
        Tensor? saved = null;
        // w·w feeds exp, which reads its output: the product goes at the end of the stage, exp's output stays for its rule
        var y = TensorScope.Stage(() => (saved = w.Matmul(w).Exp()).Mul(0.5f));
        Assert.Equal(Bytes(y) + Bytes(saved!), device.Allocator.BytesInUse - before);

        var loss = y.Sum();
        loss.Backward();

        Assert.True(saved!.IsDisposed);
        Assert.Equal(Bytes(y) + Bytes(loss) + Bytes(w.Grad!), device.Allocator.BytesInUse - before);
    }

    [Fact]
    public void Backward_keeps_no_intermediate_gradient()
    {
        var device = Device.Cpu;
        var w = TestTensors.Leaf(Enumerable.Repeat(0.01f, 4096).ToArray(), 64, 64);
        using var scope = new TensorScope();
        var loss = w.Matmul(w).Tanh().Matmul(w).Sum();
        long beforeBackward = device.Allocator.BytesInUse;

        loss.Backward();

        Assert.Equal(beforeBackward + w.Grad!.Storage.Buffer.Length * 4L, device.Allocator.BytesInUse);
    }

    [Fact]
    public void Reused_buffers_come_from_the_cache()
    {
        var device = Device.Cpu;
        using (new TensorScope()) Tensor.Zeros([1000, 7], device);
        long cached = device.Allocator.BytesCached;
        using (new TensorScope()) Tensor.Zeros([1000, 7], device);
        Assert.Equal(cached, device.Allocator.BytesCached);
    }

    [Fact]
    public void Gradient_hooks_run_once_per_leaf_from_the_last_layer_to_the_first()
    {
        var weights = Enumerable.Range(0, 4).Select(i => TestTensors.Leaf([0.5f + i, -0.25f * i], 2)).ToArray();
        var finished = new List<int>();
        for (int i = 0; i < weights.Length; i++)
        {
            int layer = i;
            weights[i].OnGradientAccumulated(_ => finished.Add(layer));
        }
        var h = Tensor.FromArray([0.3f, -0.7f], [2]);
        foreach (var w in weights) h = (h * w).Tanh();

        h.Sum().Backward();

        Assert.Equal([3, 2, 1, 0], finished);
    }

    [Fact]
    public void A_gradient_hook_sees_the_final_gradient_of_a_leaf_used_several_times()
    {
        var a = TestTensors.Leaf([1f, 2f], 2);
        var b = TestTensors.Leaf([3f, -1f], 2);
        var seen = new List<(string Leaf, float[] Grad)>();
        a.OnGradientAccumulated(t => seen.Add(("a", t.Grad!.ToArray())));
        b.OnGradientAccumulated(t => seen.Add(("b", t.Grad!.ToArray())));
        var x = Tensor.FromArray([0.5f, 4f], [2]);

        ((x * b + a) * a * b + b).Sum().Backward(); // b at the first op and the last: its hook waits for both

        Assert.Equal(["a", "b"], seen.Select(s => s.Leaf).Order());
        Assert.Equal(a.Grad!.ToArray(), seen.Single(s => s.Leaf == "a").Grad);
        Assert.Equal(b.Grad!.ToArray(), seen.Single(s => s.Leaf == "b").Grad);
    }

    [Fact]
    public void A_gradient_hook_runs_at_every_backward_until_removed_and_only_on_leaves()
    {
        var x = TestTensors.Leaf([1f, 2f], 2);
        var seen = new List<float[]>();
        var hook = x.OnGradientAccumulated(t => seen.Add(t.Grad!.ToArray()));
        (x * x).Sum().Backward();
        (x * 3f).Sum().Backward();
        hook.Dispose();
        (x * 5f).Sum().Backward();

        Assert.Equal([[2f, 4f], [5f, 7f]], seen); // the second pass's hook sees the accumulated gradient
        Assert.Throws<InvalidOperationException>(() => (x * 2f).OnGradientAccumulated(_ => { }));
    }
}
