"""Keras 3 optimizer updates as ONNX arithmetic (their epsilons and update rules, which
differ from PyTorch's), written in the order of operations of Keras's torch backend
(keras/src/backend/torch/optimizers) so float32 results agree to rounding.

The learning rate is the `lr` input, so schedules and ReduceLROnPlateau are computed by
the training loop; `step` (int64) is Keras's raw `optimizer._iterations` before the
update: the number of `train_on_batch` calls so far, counting accumulation steps.

An optimizer registers `fn(b, param, grad, slot, kwargs) -> (new_param, {slot name: new
value})`. `slot(name, init=0.0)` declares a per-parameter slot (`slot:<param>:<name>`,
shaped like the parameter, starting at `init`); `slot.shared(name, init, update)` declares
one scalar slot for the whole optimizer (`slot:optimizer:<name>`, Nadam's `u_product`):
`update(input name) -> new value name` is built once, and `shared` returns (input name,
new value name). `local_step(b)`, `step_power(b, base)` give Keras's `iterations + 1` and
`base ** (iterations + 1)` (built once per graph).

`apply_optimizer` adds what Keras's BaseOptimizer does around every update, in its order:
gradient clipping (clipping.py), weight decay (`p *= 1 - weight_decay * lr`, every
trainable variable, before the update), the update, then the EMA of the variables
(`use_ema`, slot `average`; with `ema_overwrite_frequency` the variables take the average
every that many updates; the training loop must copy `slot:<p>:average` into `<p>` when
fit ends, as Keras's `finalize_variable_values` does). With `gradient_accumulation_steps`
n, gradients add up in slot `gradient_accumulator`, and every n-th step updates with the
mean of the n gradients; the other steps leave the parameters and slots (except the
accumulator) as they are. `loss_scale_factor` scales the loss and divides the gradients
back: a no-op here.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from transpiler.emit.train.clipping import clip_gradients
from transpiler.emit.train.names import LR_INPUT, STEP_INPUT

OPTIMIZERS: dict[str, Callable] = {}
SHARED_SCOPE = "optimizer"  # slot:optimizer:<name> for optimizer-wide scalar slots
LR = LR_INPUT
FLOAT, INT64 = 1, 7  # ONNX element types

_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def optimizer(name: str):
    def register(fn):
        OPTIMIZERS[name] = fn
        return fn

    return register


def _once(b, key, build: Callable[[], str]) -> str:
    """A value built once per builder (scalars every parameter's update shares)."""
    memo = _memo.setdefault(b, {})
    if key not in memo:
        memo[key] = build()
    return memo[key]


def iterations(b) -> str:
    """Keras's `optimizer.iterations` (int64): `step`, or `step // n` when gradients
    accumulate over n steps (set by apply_optimizer)."""
    return _memo.get(b, {}).get("iterations", STEP_INPUT)


def local_step(b) -> str:
    """float(iterations + 1), as Keras's update steps compute it."""

    def build():
        plus = b.op("Add", [iterations(b), b.const(1, np.int64)])
        return b.op("Cast", [plus], to=FLOAT)

    return _once(b, "local_step", build)


def step_power(b, base: float) -> str:
    """base ** (iterations + 1) in float32, as Keras's beta powers."""
    return _once(b, ("power", base), lambda: b.op("Pow", [b.const(base), local_step(b)]))


def _mul(b, x, y):
    return b.op("Mul", [x, y])


def _add(b, x, y):
    return b.op("Add", [x, y])


def _sub(b, x, y):
    return b.op("Sub", [x, y])


def _div(b, x, y):
    return b.op("Div", [x, y])


def _ema(b, x, g, beta: float):
    """x * beta + g * (1 - beta) (torch's foreach_mul_ then foreach_add_ with alpha)."""
    return _add(b, _mul(b, x, b.const(beta)), _mul(b, g, b.const(1.0 - beta)))


@optimizer("SGD")
def _sgd(b, p, g, slot, kw):
    """p -= lr g; with momentum m = momentum m - lr g, p += m (nesterov: p += momentum m -
    lr g)."""
    momentum = kw.get("momentum", 0.0)
    step = _mul(b, g, LR)
    if not momentum:
        return _sub(b, p, step), {}
    m = slot("momentum")
    new_m = _sub(b, _mul(b, m, b.const(momentum)), step)
    if kw.get("nesterov"):
        return _add(b, _sub(b, p, step), _mul(b, new_m, b.const(momentum))), {"momentum": new_m}
    return _add(b, p, new_m), {"momentum": new_m}


@optimizer("RMSprop")
def _rmsprop(b, p, g, slot, kw):
    rho, momentum = kw.get("rho", 0.9), kw.get("momentum", 0.0)
    eps = b.const(kw.get("epsilon", 1e-7))
    v = _ema(b, slot("velocity"), _mul(b, g, g), rho)
    new = {"velocity": v}
    denominator = _add(b, v, eps)
    if kw.get("centered"):
        avg = _ema(b, slot("average_gradient"), g, rho)
        new["average_gradient"] = avg
        denominator = _sub(b, denominator, _mul(b, avg, avg))
    increment = _div(b, _mul(b, g, LR), b.op("Sqrt", [denominator]))
    if momentum > 0:
        m = _add(b, _mul(b, slot("momentum"), b.const(momentum)), increment)
        new["momentum"] = m
        return _sub(b, p, m), new
    return _sub(b, p, increment), new


def _adam(b, p, g, slot, kw):
    b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    eps = b.const(kw.get("epsilon", 1e-7))

    def alpha_build():
        root = b.op("Sqrt", [_sub(b, b.const(1.0), step_power(b, b2))])
        return _div(b, _mul(b, LR, root), _sub(b, b.const(1.0), step_power(b, b1)))

    alpha = _once(b, ("adam_alpha", b1, b2), alpha_build)
    m = _ema(b, slot("momentum"), g, b1)
    v = _ema(b, slot("velocity"), _mul(b, g, g), b2)
    new = {"momentum": m, "velocity": v}
    if kw.get("amsgrad"):
        v = b.op("Max", [slot("velocity_hat"), v])
        new["velocity_hat"] = v
    update = _div(b, _mul(b, m, alpha), _add(b, b.op("Sqrt", [v]), eps))
    return _sub(b, p, update), new


optimizer("Adam")(_adam)
optimizer("AdamW")(_adam)  # Keras's AdamW is Adam with the base class's weight decay


@optimizer("Adagrad")
def _adagrad(b, p, g, slot, kw):
    eps = b.const(kw.get("epsilon", 1e-7))
    acc = _add(b, slot("accumulator", kw.get("initial_accumulator_value", 0.1)), _mul(b, g, g))
    update = _div(b, _mul(b, g, LR), b.op("Sqrt", [_add(b, acc, eps)]))
    return _sub(b, p, update), {"accumulator": acc}


@optimizer("Adadelta")
def _adadelta(b, p, g, slot, kw):
    rho = kw.get("rho", 0.95)
    eps = b.const(kw.get("epsilon", 1e-7))
    grad_acc = _ema(b, slot("accumulated_grad"), _mul(b, g, g), rho)
    delta_acc = slot("accumulated_delta_var")

    def rms(x):
        return b.op("Sqrt", [_add(b, x, eps)])

    delta = b.op("Neg", [_div(b, _mul(b, rms(delta_acc), g), rms(grad_acc))])
    new_delta_acc = _ema(b, delta_acc, _mul(b, delta, delta), rho)
    new_p = _add(b, p, _mul(b, delta, LR))
    return new_p, {"accumulated_grad": grad_acc, "accumulated_delta_var": new_delta_acc}


@optimizer("Adamax")
def _adamax(b, p, g, slot, kw):
    b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    eps = b.const(kw.get("epsilon", 1e-7))
    m = _ema(b, slot("momentum"), g, b1)
    u = b.op("Max", [_mul(b, slot("norm"), b.const(b2)), b.op("Abs", [g])])
    correction = _sub(b, b.const(1.0), step_power(b, b1))
    update = _div(b, _mul(b, m, LR), _mul(b, _add(b, u, eps), correction))
    return _sub(b, p, update), {"momentum": m, "norm": u}


@optimizer("Nadam")
def _nadam(b, p, g, slot, kw):
    b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    eps = b.const(kw.get("epsilon", 1e-7))
    one = b.const(1.0)

    def u_at(step):  # beta_1 * (1 - 0.5 * 0.96 ** step)
        decay = b.op("Pow", [b.const(0.96), step])
        return _mul(b, b.const(b1), _sub(b, one, _mul(b, b.const(0.5), decay)))

    u_t = _once(b, ("nadam_u_t", b1), lambda: u_at(local_step(b)))
    u_t1 = _once(b, ("nadam_u_t1", b1), lambda: u_at(_add(b, local_step(b), one)))
    _, u_product_t = slot.shared("u_product", 1.0, lambda u: _mul(b, u, u_t))
    u_product_t1 = _once(b, ("nadam_u_product_t1", b1), lambda: _mul(b, u_product_t, u_t1))
    m = _ema(b, slot("momentum"), g, b1)
    v = _ema(b, slot("velocity"), _mul(b, g, g), b2)
    m_hat = _add(
        b,
        _div(b, _mul(b, m, u_t1), _sub(b, one, u_product_t1)),
        _div(b, _mul(b, g, _sub(b, one, u_t)), _sub(b, one, u_product_t)),
    )
    v_hat = _div(b, v, _sub(b, one, step_power(b, b2)))
    update = _div(b, _mul(b, m_hat, LR), _add(b, b.op("Sqrt", [v_hat]), eps))
    return _sub(b, p, update), {"momentum": m, "velocity": v}


@optimizer("Lion")
def _lion(b, p, g, slot, kw):
    b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.99)
    m = slot("momentum")
    direction = b.op("Sign", [_ema(b, m, g, b1)])
    return _sub(b, p, _mul(b, direction, LR)), {"momentum": _ema(b, m, g, b2)}


class _Slots:
    """The `slot` callable handed to an optimizer for one parameter at a time."""

    def __init__(self, b) -> None:
        self.b = b
        self.initial: dict[str, np.ndarray] = {}
        self.shared_new: dict[str, str] = {}
        self.param = ""
        self.shape: tuple = ()

    def key(self, name: str) -> str:
        return f"slot:{self.param}:{name}"

    def __call__(self, name: str, init: float = 0.0) -> str:
        key = self.key(name)
        self.initial[key] = np.full(self.shape, init, np.float32)
        return key

    def shared(self, name: str, init: float, update: Callable[[str], str]) -> tuple[str, str]:
        key = f"slot:{SHARED_SCOPE}:{name}"
        if key not in self.initial:
            self.initial[key] = np.array(init, np.float32)
            self.shared_new[key] = update(key)
        return key, self.shared_new[key]


def _reached(b, grads: dict[str, str]) -> dict[str, str]:
    """The gradients of the parameters the loss reaches: autodiff gives the others a zero
    (`<param>_no_grad`) where Keras gets None and leaves the variable, its slots and its
    weight decay alone."""
    wanted = set(grads.values())
    zero = set()
    for node in b.nodes:
        out = node.output[0] if node.output else None
        if out in wanted and node.op_type == "Mul" and "no_grad" in node.name:
            zero.add(out)
    return {p: g for p, g in grads.items() if g not in zero}


def apply_optimizer(b, config, params: dict[str, np.ndarray], grads: dict[str, str]):
    """Returns ({param: new value}, {slot input: initial array}, {slot input: new value})."""
    spec = config.optimizer
    fn = OPTIMIZERS.get(spec.name)
    if fn is None:
        raise NotImplementedError(f"the optimizer {spec.name} is not emitted yet")
    kw = spec.kwargs
    slots = _Slots(b)
    used = _reached(b, {n: g for n, g in grads.items() if n in params})
    accumulate = kw.get("gradient_accumulation_steps")
    acc_new: dict[str, str] = {}
    is_update = None
    if accumulate:
        n = b.const(accumulate, np.int64)
        next_step = b.op("Add", [STEP_INPUT, b.const(1, np.int64)])
        is_update = b.op("Equal", [b.op("Mod", [next_step, n]), b.const(0, np.int64)])
        _memo.setdefault(b, {})["iterations"] = b.op("Div", [STEP_INPUT, n])
        averaged = {}
        for name, g in used.items():
            slots.param, slots.shape = name, params[name].shape
            acc = slots("gradient_accumulator")
            total = _add(b, g, acc)
            averaged[name] = _div(b, total, b.const(float(accumulate)))
            acc_new[slots.key("gradient_accumulator")] = b.op(
                "Where", [is_update, b.const(0.0), total]
            )
        used = averaged
    used = clip_gradients(b, kw, used)
    wd = kw.get("weight_decay")
    decay = _sub(b, b.const(1.0), _mul(b, b.const(wd), LR)) if wd is not None else None

    new_params: dict[str, str] = {}
    new_slots: dict[str, str] = {}
    for name, array in params.items():
        if name not in used:
            new_params[name] = name
            continue
        slots.param, slots.shape = name, array.shape
        p = name if decay is None else _mul(b, name, decay)
        new_p, updated = fn(b, p, used[name], slots, kw)
        new_params[name] = new_p
        for slot_name, value in updated.items():
            new_slots[slots.key(slot_name)] = value
    new_slots.update(slots.shared_new)
    if is_update is not None:  # steps that only accumulate keep everything else
        new_params = {
            n: v if v == n else b.op("Where", [is_update, v, n]) for n, v in new_params.items()
        }
        new_slots = {n: b.op("Where", [is_update, v, n]) for n, v in new_slots.items()}
        new_slots.update(acc_new)
    if kw.get("use_ema"):
        new_params = _ema_update(b, kw, params, new_params, slots, new_slots)
    for key in slots.initial:  # slots an optimizer declared but left unchanged
        new_slots.setdefault(key, key)
    _memo.pop(b, None)
    return new_params, slots.initial, new_slots


def _ema_update(b, kw, params, new_params, slots, new_slots):
    """Keras's `_update_model_variables_moving_average` after every step (momentum 0 on
    the first update), then `ema_overwrite_frequency`."""
    not_first = b.op(
        "Cast", [b.op("Not", [b.op("Equal", [iterations(b), b.const(0, np.int64)])])], to=FLOAT
    )
    momentum = _mul(b, not_first, b.const(kw.get("ema_momentum", 0.99)))
    keep = _sub(b, b.const(1.0), momentum)
    every = kw.get("ema_overwrite_frequency")
    overwrite = None
    if every:
        plus = b.op("Add", [iterations(b), b.const(1, np.int64)])
        overwrite = b.op(
            "Equal", [b.op("Mod", [plus, b.const(every, np.int64)]), b.const(0, np.int64)]
        )
    out = {}
    for name, array in params.items():
        slots.param, slots.shape = name, array.shape
        avg = _add(b, _mul(b, momentum, slots("average")), _mul(b, keep, new_params[name]))
        new_slots[slots.key("average")] = avg
        out[name] = (
            new_params[name]
            if overwrite is None
            else b.op("Where", [overwrite, avg, new_params[name]])
        )
    return out
