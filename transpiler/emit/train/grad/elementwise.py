"""VJP rules of elementwise ops (arithmetic with broadcasting, math, activations)."""

from __future__ import annotations

import math

from transpiler.emit.train.grad import vjp


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            if a.type == a.FLOAT:
                return a.f
            if a.type == a.INT:
                return a.i
            if a.type == a.STRING:
                return a.s.decode()
    return default


@vjp("Add", "Sum")
def _add(g, node, grads):
    (dy,) = grads
    return [g.unbroadcast(dy, x, node.output[0]) for x in node.input]


@vjp("Sub")
def _sub(g, node, grads):
    (dy,) = grads
    a, b = node.input
    y = node.output[0]
    return [g.unbroadcast(dy, a, y), g.unbroadcast(g.op("Neg", [dy]), b, y)]


@vjp("Mul")
def _mul(g, node, grads):
    (dy,) = grads
    a, b = node.input
    y = node.output[0]
    return [
        g.unbroadcast(g.op("Mul", [dy, b]), a, y),
        g.unbroadcast(g.op("Mul", [dy, a]), b, y),
    ]


@vjp("Div")
def _div(g, node, grads):
    (dy,) = grads
    a, b = node.input
    y = node.output[0]
    da = g.op("Div", [dy, b])
    db = g.op("Neg", [g.op("Div", [g.op("Mul", [dy, y]), b])])
    return [g.unbroadcast(da, a, y), g.unbroadcast(db, b, y)]


@vjp("Pow")
def _pow(g, node, grads):
    (dy,) = grads
    a, b = node.input
    y = node.output[0]
    # d/da a^b = b a^(b-1);  d/db a^b = a^b log a (only meaningful for a > 0)
    one = g.const(1.0)
    da = g.op("Mul", [dy, g.op("Mul", [b, g.op("Pow", [a, g.op("Sub", [b, one])])])])
    db = g.op("Mul", [dy, g.op("Mul", [y, g.op("Log", [a])])])
    return [g.unbroadcast(da, a, y), g.unbroadcast(db, b, y)]


def _unary(op_type):
    """Registers a rule dx = dy * f'(x, y) given as a function building f'."""

    def wrap(derivative):
        @vjp(op_type)
        def rule(g, node, grads):
            (dy,) = grads
            return [g.op("Mul", [dy, derivative(g, node, node.input[0], node.output[0])])] + [
                None
            ] * (len(node.input) - 1)

        return derivative

    return wrap


@vjp("Neg")
def _neg(g, node, grads):
    return [g.op("Neg", [grads[0]])]


@vjp("Identity")
def _identity(g, node, grads):
    return [grads[0]]


@_unary("Exp")
def _exp(g, node, x, y):
    return y


@_unary("Log")
def _log(g, node, x, y):
    return g.op("Reciprocal", [x])


@_unary("Sqrt")
def _sqrt(g, node, x, y):
    return g.op("Div", [g.const(0.5), y])


@_unary("Reciprocal")
def _reciprocal(g, node, x, y):
    return g.op("Neg", [g.op("Mul", [y, y])])


@_unary("Abs")
def _abs(g, node, x, y):
    return g.op("Sign", [x])


@_unary("Sin")
def _sin(g, node, x, y):
    return g.op("Cos", [x])


@_unary("Cos")
def _cos(g, node, x, y):
    return g.op("Neg", [g.op("Sin", [x])])


@_unary("Relu")
def _relu(g, node, x, y):
    return g.op("Cast", [g.op("Greater", [x, g.const(0.0)])], to=g.float_type)


@_unary("LeakyRelu")
def _leaky(g, node, x, y):
    alpha = _attr(node, "alpha", 0.01)
    positive = g.op("Greater", [x, g.const(0.0)])
    return g.op("Where", [positive, g.const(1.0), g.const(alpha)])


@_unary("Sigmoid")
def _sigmoid(g, node, x, y):
    return g.op("Mul", [y, g.op("Sub", [g.const(1.0), y])])


@_unary("Tanh")
def _tanh(g, node, x, y):
    return g.op("Sub", [g.const(1.0), g.op("Mul", [y, y])])


@_unary("Softplus")
def _softplus(g, node, x, y):
    return g.op("Sigmoid", [x])


@_unary("Softsign")
def _softsign(g, node, x, y):
    d = g.op("Add", [g.const(1.0), g.op("Abs", [x])])
    return g.op("Reciprocal", [g.op("Mul", [d, d])])


@_unary("Elu")
def _elu(g, node, x, y):
    alpha = _attr(node, "alpha", 1.0)
    positive = g.op("Greater", [x, g.const(0.0)])
    return g.op("Where", [positive, g.const(1.0), g.op("Add", [y, g.const(alpha)])])


@_unary("Selu")
def _selu(g, node, x, y):
    alpha = _attr(node, "alpha", 1.67326319217681884765625)
    gamma = _attr(node, "gamma", 1.05070102214813232421875)
    positive = g.op("Greater", [x, g.const(0.0)])
    negative = g.op("Add", [y, g.const(alpha * gamma)])
    return g.op("Where", [positive, g.const(gamma), negative])


@_unary("Erf")
def _erf(g, node, x, y):
    return g.op("Mul", [g.const(2 / math.sqrt(math.pi)), g.op("Exp", [g.op("Neg", [_sq(g, x)])])])


def _sq(g, x):
    return g.op("Mul", [x, x])


@_unary("Gelu")
def _gelu(g, node, x, y):
    if _attr(node, "approximate", "none") != "none":
        raise NotImplementedError("Gelu(approximate='tanh') has no gradient rule yet")
    # d/dx x*Phi(x) = Phi(x) + x*phi(x)
    phi_cdf = g.op(
        "Mul",
        [
            g.const(0.5),
            g.op("Add", [g.const(1.0), g.op("Erf", [g.op("Mul", [x, g.const(1 / math.sqrt(2))])])]),
        ],
    )
    pdf = g.op(
        "Mul",
        [
            g.const(1 / math.sqrt(2 * math.pi)),
            g.op("Exp", [g.op("Mul", [_sq(g, x), g.const(-0.5)])]),
        ],
    )
    return g.op("Add", [phi_cdf, g.op("Mul", [x, pdf])])


@_unary("Mish")
def _mish(g, node, x, y):
    # y = x tanh(sp), sp = softplus(x): y' = tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x)
    t = g.op("Tanh", [g.op("Softplus", [x])])
    one_minus = g.op("Sub", [g.const(1.0), g.op("Mul", [t, t])])
    return g.op("Add", [t, g.op("Mul", [x, g.op("Mul", [one_minus, g.op("Sigmoid", [x])])])])


@_unary("HardSigmoid")
def _hard_sigmoid(g, node, x, y):
    alpha = _attr(node, "alpha", 0.2)
    inside = g.op("And", [g.op("Greater", [y, g.const(0.0)]), g.op("Less", [y, g.const(1.0)])])
    return g.op("Where", [inside, g.const(alpha), g.const(0.0)])


@_unary("HardSwish")
def _hard_swish(g, node, x, y):
    # y = x * relu6(x + 3) / 6: 0 below -3, 1 above 3, (2x + 3) / 6 between
    below = g.op("Less", [x, g.const(-3.0)])
    above = g.op("Greater", [x, g.const(3.0)])
    middle = g.op(
        "Div", [g.op("Add", [g.op("Mul", [x, g.const(2.0)]), g.const(3.0)]), g.const(6.0)]
    )
    return g.op("Where", [below, g.const(0.0), g.op("Where", [above, g.const(1.0), middle])])


@vjp("Clip")
def _clip(g, node, grads):
    (dy,) = grads
    x = node.input[0]
    mask = None
    if len(node.input) > 1 and node.input[1]:
        mask = g.op("GreaterOrEqual", [x, node.input[1]])
    if len(node.input) > 2 and node.input[2]:
        upper = g.op("LessOrEqual", [x, node.input[2]])
        mask = upper if mask is None else g.op("And", [mask, upper])
    dx = dy if mask is None else g.op("Mul", [dy, g.op("Cast", [mask], to=g.float_type)])
    return [dx] + [None] * (len(node.input) - 1)


@vjp("PRelu")
def _prelu(g, node, grads):
    # y = x where x > 0, else slope * x (slope broadcasts to x, as Keras's PReLU alpha)
    (dy,) = grads
    x, slope = node.input
    y = node.output[0]
    positive = g.op("Greater", [x, g.const(0.0)])
    dx = g.op("Mul", [dy, g.op("Where", [positive, g.const(1.0), slope])])
    dslope = g.op("Mul", [dy, g.op("Where", [positive, g.const(0.0), x])])
    return [g.record(dx, x), g.unbroadcast(dslope, slope, y)]


@vjp("Max", "Min")
def _max_min(g, node, grads):
    (dy,) = grads
    if len(node.input) != 2:
        raise NotImplementedError(f"{node.op_type} with {len(node.input)} inputs")
    a, b = node.input
    y = node.output[0]
    cmp = "GreaterOrEqual" if node.op_type == "Max" else "LessOrEqual"
    pick_a = g.op("Cast", [g.op(cmp, [a, b])], to=g.float_type)
    pick_b = g.op("Sub", [g.const(1.0), pick_a])
    return [
        g.unbroadcast(g.op("Mul", [dy, pick_a]), a, y),
        g.unbroadcast(g.op("Mul", [dy, pick_b]), b, y),
    ]


@vjp("Where")
def _where(g, node, grads):
    (dy,) = grads
    cond, a, b = node.input
    y = node.output[0]
    zero = g.const(0.0)
    da = g.op("Where", [cond, dy, zero])
    db = g.op("Where", [cond, zero, dy])
    return [None, g.unbroadcast(da, a, y), g.unbroadcast(db, b, y)]


@vjp("Cast")
def _cast(g, node, grads):
    to = _attr(node, "to", 1)
    src = g.dtypes.get(node.input[0], 1)
    if to != 1 or src != 1:
        return [None]  # casts to or from integers carry no gradient
    return [grads[0]]
