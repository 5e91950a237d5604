using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors;

// Elementwise unary and binary ops with NumPy broadcasting; each backward next to its forward.
public sealed partial class Tensor
{
    // ---------------- unary ----------------

    private Tensor Unary<TOp>(string op, float a = 0f, float b = 0f) where TOp : struct, IUnaryOp
    {
        RequireDType(DType.Float32, op);
        var y = new Tensor(Device, (int[])_shape.Clone(), DType.Float32);
        if (Count > 0) Backend.Unary<TOp>(View, y.View, Count, a, b);
        var x = this;
        var reads = default(TOp).DerivativeReads;
        return Record(y, op, [x], Saved(reads, x, null, y), g =>
        {
            var dx = new Tensor(x.Device, (int[])x._shape.Clone(), DType.Float32);
            // an operand the derivative does not read was not saved: its slot gets dy, which is never read there
            BufferView Read(Tensor t, Operands operand) => (reads & operand) != 0 ? t.View : g.View;
            if (x.Count > 0) x.Backend.UnaryBackward<TOp>(Read(x, Operands.A), Read(y, Operands.Output), g.View, dx.View, x.Count, a, b);
            return [dx];
        });
    }

    /// <summary>The operands named in <paramref name="reads"/>, for <see cref="Record"/>.</summary>
    private static Tensor[] Saved(Operands reads, Tensor a, Tensor? b, Tensor output)
    {
        var saved = new List<Tensor>(3);
        if ((reads & Operands.A) != 0) saved.Add(a);
        if ((reads & Operands.B) != 0) saved.Add(b!);
        if ((reads & Operands.Output) != 0) saved.Add(output);
        return saved.ToArray();
    }

    public Tensor Neg() => Unary<NegOp>("neg");
    public Tensor Exp() => Unary<ExpOp>("exp");
    public Tensor Log() => Unary<LogOp>("log");
    public Tensor Sqrt() => Unary<SqrtOp>("sqrt");
    public Tensor Abs() => Unary<AbsOp>("abs");
    public Tensor Pow(float exponent) => Unary<PowOp>("pow", exponent);
    public Tensor Square() => Unary<PowOp>("pow", 2f);
    public Tensor Clamp(float min, float max) => Unary<ClampOp>("clamp", min, max);
    public Tensor Relu() => Unary<ReluOp>("relu");
    public Tensor LeakyRelu(float negativeSlope = 0.01f) => Unary<LeakyReluOp>("leaky_relu", negativeSlope);
    public Tensor Sigmoid() => Unary<SigmoidOp>("sigmoid");
    public Tensor Tanh() => Unary<TanhOp>("tanh");
    public Tensor Silu() => Unary<SiluOp>("silu");

    /// <summary>scale · x + shift in one pass.</summary>
    public Tensor Affine(float scale, float shift) => Unary<AffineOp>("affine", scale, shift);
    public Tensor Mul(float scale) => Affine(scale, 0f);
    public Tensor Add(float shift) => Affine(1f, shift);

    /// <summary>A copy that stays in the graph (gradient passes through unchanged).</summary>
    public Tensor Clone() => Affine(1f, 0f);

    // ---------------- binary with broadcasting ----------------

    /// <summary>y = op(a, b) over the broadcast shape, with no graph recorded.</summary>
    private static Tensor BroadcastBinary<TOp>(Tensor a, Tensor b, string op) where TOp : struct, IBinaryOp
    {
        a.RequireDType(DType.Float32, op);
        b.RequireDType(DType.Float32, op);
        CheckSameDevice(a, b, op);
        int[] shape = Layout.Broadcast(a._shape, b._shape, op);
        var y = new Tensor(a.Device, shape, DType.Float32);
        if (y.Count > 0)
        {
            var (s, st, rank) = Layout.Collapse(shape, Layout.BroadcastStrides(a._shape, shape), Layout.BroadcastStrides(b._shape, shape),
                Layout.ContiguousStrides(shape));
            a.Backend.Binary<TOp>(a.View, st[0], b.View, st[1], y.View, s, rank);
        }
        return y;
    }

    /// <summary>y = op(a, b); <paramref name="backward"/> reads only the operands named in <paramref name="reads"/>.</summary>
    private static Tensor Binary<TOp>(Tensor a, Tensor b, string op, Operands reads,
        Func<Tensor, Tensor, Tensor, Tensor, (Tensor? Da, Tensor? Db)> backward) where TOp : struct, IBinaryOp
    {
        var y = BroadcastBinary<TOp>(a, b, op);
        return Record(y, op, [a, b], Saved(reads, a, b, y), g =>
        {
            var (da, db) = backward(a, b, y, g);
            return [da?.SumTo(a._shape), db?.SumTo(b._shape)];
        });
    }

    public Tensor Add(Tensor other) => Binary<AddOp>(this, other, "add", Operands.None, (a, b, y, g) => (g, g));
    public Tensor Sub(Tensor other) =>
        Binary<SubOp>(this, other, "sub", Operands.None, (a, b, y, g) => (g, b.RequiresGrad ? g.Neg() : null));

    public Tensor Mul(Tensor other) => Binary<MulOp>(this, other, "mul", Operands.A | Operands.B, (a, b, y, g) =>
        (a.RequiresGrad ? g.Mul(b) : null, b.RequiresGrad ? g.Mul(a) : null));

    public Tensor Div(Tensor other) => Binary<DivOp>(this, other, "div", Operands.B | Operands.Output, (a, b, y, g) =>
    {
        var ga = g.Div(b);
        return (ga, b.RequiresGrad ? ga.Mul(y).Neg() : null); // d(a/b)/db = −(a/b)/b
    });

    /// <summary>Elementwise maximum; the gradient goes to a where a ≥ b, else to b.</summary>
    public Tensor Maximum(Tensor other) => Binary<MaximumOp>(this, other, "maximum", Operands.A | Operands.B, (a, b, y, g) =>
    {
        var fromA = a.Ge(b);
        return (g.Mul(fromA), g.Mul(fromA.Affine(-1f, 1f)));
    });

    // ---------------- comparisons: 1 where the comparison holds, else 0 (float32); no gradient ----------------

    private Tensor Compare<TComparison>(Tensor other, string op) where TComparison : struct, IComparison =>
        BroadcastBinary<CompareOp<TComparison>>(this, other, op);

    public Tensor Eq(Tensor other) => Compare<IsEqual>(other, "eq");
    public Tensor Ne(Tensor other) => Compare<IsNotEqual>(other, "ne");
    public Tensor Gt(Tensor other) => Compare<IsGreater>(other, "gt");
    public Tensor Ge(Tensor other) => Compare<IsGreaterEqual>(other, "ge");
    public Tensor Lt(Tensor other) => Compare<IsLess>(other, "lt");
    public Tensor Le(Tensor other) => Compare<IsLessEqual>(other, "le");

    // ---------------- select ----------------

    /// <summary>torch.where: <paramref name="a"/> where <paramref name="condition"/> ≠ 0 (a NaN condition included),
    /// else <paramref name="b"/>, all three broadcast together. The gradient goes to a where the condition holds
    /// and to b elsewhere; the condition gets none.</summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        const string op = "where";
        condition.RequireDType(DType.Float32, op);
        a.RequireDType(DType.Float32, op);
        b.RequireDType(DType.Float32, op);
        CheckSameDevice(condition, a, op);
        CheckSameDevice(a, b, op);
        int[] shape = Layout.Broadcast(Layout.Broadcast(condition._shape, a._shape, op), b._shape, op);
        var y = new Tensor(a.Device, shape, DType.Float32);
        if (y.Count > 0)
        {
            var (s, st, rank) = Layout.Collapse(shape, Layout.BroadcastStrides(condition._shape, shape),
                Layout.BroadcastStrides(a._shape, shape), Layout.BroadcastStrides(b._shape, shape), Layout.ContiguousStrides(shape));
            a.Backend.Where(condition.View, st[0], a.View, st[1], b.View, st[2], y.View, s, rank);
        }
        return Record(y, op, [a, b], [condition], g =>
        {
            var zero = Scalar(0f, g.Device);
            return [a.RequiresGrad ? Where(condition, g, zero).SumTo(a._shape) : null,
                b.RequiresGrad ? Where(condition, zero, g).SumTo(b._shape) : null];
        });
    }

    /// <summary>In place, no autograd: this += other (same shape). Used for gradient accumulation.</summary>
    public void AddInPlace(Tensor other)
    {
        CheckSameShape(this, other, "add_");
        CheckSameDevice(this, other, "add_");
        if (Count == 0) return;
        var one = Dim6.From([1]);
        Backend.Binary<AddOp>(View, one, other.View, one, View, Dim6.From([Count]), 1);
    }

    /// <summary>In place, no autograd: every element set to <paramref name="value"/> (an int32 tensor stores (int)value).</summary>
    public void Fill(float value) => Backend.Fill(View, Count, DType == DType.Int32 ? BitConverter.Int32BitsToSingle((int)value) : value);

    /// <summary>Sets every element to an integer (exactly, in an int32 tensor).</summary>
    public void Fill(int value) => Backend.Fill(View, Count, DType == DType.Int32 ? BitConverter.Int32BitsToSingle(value) : value);

    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator -(Tensor a) => a.Neg();
    public static Tensor operator +(Tensor a, float s) => a.Add(s);
    public static Tensor operator +(float s, Tensor a) => a.Add(s);
    public static Tensor operator -(Tensor a, float s) => a.Add(-s);
    public static Tensor operator -(float s, Tensor a) => a.Affine(-1f, s);
    public static Tensor operator *(Tensor a, float s) => a.Mul(s);
    public static Tensor operator *(float s, Tensor a) => a.Mul(s);
    public static Tensor operator /(Tensor a, float s) => a.Mul(1f / s);
}
