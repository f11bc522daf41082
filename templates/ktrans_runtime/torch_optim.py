"""Keras 3's optimizers in PyTorch, update for update.

torch.optim's optimizers are not Keras's: RMSprop and Adam put epsilon elsewhere,
Adagrad's accumulator starts at 0, Nadam keeps no momentum cache, weight decay and
clipping differ. `KerasOptimizer` follows Keras's torch backend instead
(keras/src/backend/torch/optimizers and BaseOptimizer): the same `torch._foreach_*`
operations in the same order, on the parameters as the torch module holds them (every
update is elementwise, and the norms of clipping are sums, so the layout does not
matter), fused where torch has the fused operation (`addcmul`, `addcdiv`: the same
formula, rounded once less; tests/torch_train checks every optimizer against Keras to
float32 rounding). Around the update, as Keras's BaseOptimizer does: gradient accumulation
(`gradient_accumulation_steps`), clipping (`clipnorm`, `global_clipnorm`, `clipvalue`),
weight decay (`p *= 1 - weight_decay * lr`), then the exponential moving average of the
parameters (`use_ema`).

The optimizer is stateless about time: `apply(grads, step, lr)` takes the step
count (Keras's raw `optimizer._iterations` before the update: the training steps done,
counting accumulation steps) and this step's learning rate (a schedule's value is
the loop's business). Its slots are named as the onnxruntime engine names them,
`slot:<layer>/<weight>:<name>` and `slot:optimizer:u_product` (Nadam), so checkpoints
read alike. A parameter whose gradient is None (the loss does not reach it) is left
alone, slots and weight decay included, as Keras does.

torch is imported when an optimizer is made, not with this module.
"""

from __future__ import annotations

import numpy as np

SLOT = "slot:"
SHARED = "slot:optimizer:"

#: the slots each optimizer keeps per parameter (their initial value: 0 unless given)
SLOTS = {
    "SGD": lambda kw: ("momentum",) if kw.get("momentum") else (),
    "RMSprop": lambda kw: (
        ("velocity",)
        + (("momentum",) if kw.get("momentum", 0.0) > 0 else ())
        + (("average_gradient",) if kw.get("centered") else ())
    ),
    "Adam": lambda kw: ("momentum", "velocity") + (("velocity_hat",) if kw.get("amsgrad") else ()),
    "Adagrad": lambda kw: ("accumulator",),
    "Adadelta": lambda kw: ("accumulated_grad", "accumulated_delta_var"),
    "Adamax": lambda kw: ("momentum", "norm"),
    "Nadam": lambda kw: ("momentum", "velocity"),
    "Lion": lambda kw: ("momentum",),
}
SLOTS["AdamW"] = SLOTS["Adam"]


class KerasOptimizer:
    """The optimizer of a train block over `params` ({"<layer>/<weight>": trainable
    torch parameter}, in the model's order). `spec`: {"name": "Adam", and every keyword
    argument of the train block's optimizer, Keras's defaults filled in}."""

    def __init__(self, spec: dict, params: dict) -> None:
        import torch

        self.torch = torch
        self.name = spec["name"]
        if self.name not in SLOTS:
            raise ValueError(f"the optimizer {self.name} is not supported")
        self.kw = {k: v for k, v in spec.items() if k != "name"}
        self.params = dict(params)
        self.rule = RULES[self.name]
        self.slots: dict[str, object] = {}
        for key, p in self.params.items():
            for slot in SLOTS[self.name](self.kw):
                init = (
                    self.kw.get("initial_accumulator_value", 0.1) if slot == "accumulator" else 0.0
                )
                self.slots[f"{SLOT}{key}:{slot}"] = torch.full_like(
                    p.detach(), init, memory_format=torch.contiguous_format
                )
            if self.kw.get("gradient_accumulation_steps"):
                self.slots[f"{SLOT}{key}:gradient_accumulator"] = torch.zeros_like(
                    p.detach(), memory_format=torch.contiguous_format
                )
            if self.kw.get("use_ema"):
                self.slots[f"{SLOT}{key}:average"] = torch.zeros_like(
                    p.detach(), memory_format=torch.contiguous_format
                )
        if self.name == "Nadam":
            first = next(iter(self.params.values()), None)
            device = first.device if first is not None else "cpu"
            self.slots[f"{SHARED}u_product"] = torch.ones((), device=device)

    # ------------------------------------------------------------ the state

    def state(self) -> dict:
        """{slot name: tensor} (the tensors themselves, not copies)."""
        return dict(self.slots)

    def load(self, arrays: dict) -> None:
        """Overwrites the named slots (numpy arrays or tensors)."""
        with self.torch.no_grad():
            for name, value in arrays.items():
                if name in self.slots:
                    target = self.slots[name]
                    target.copy_(self.torch.as_tensor(value).to(target.device))

    def moving_averages(self) -> dict:
        """{parameter: its moving average} (use_ema): what Keras's
        finalize_variable_values copies into the parameters when fit ends."""
        return {
            key: self.slots[f"{SLOT}{key}:average"]
            for key in self.params
            if f"{SLOT}{key}:average" in self.slots
        }

    def _slot_list(self, keys: list[str], slot: str) -> list:
        return [self.slots[f"{SLOT}{key}:{slot}"] for key in keys]

    # ------------------------------------------------------------ one step

    def apply(self, grads: dict, step: int, lr: float) -> None:
        """One optimizer step with `grads` ({key: gradient or None}) at raw step count
        `step`, learning rate `lr`."""
        torch = self.torch
        with torch.no_grad():
            self._apply(grads, step, lr)

    def _apply(self, grads: dict, step: int, lr: float) -> None:
        torch = self.torch
        kw = self.kw
        keys = [k for k in self.params if grads.get(k) is not None]
        every = kw.get("gradient_accumulation_steps")
        iterations = step // every if every else step
        if keys:
            gs = [grads[k] for k in keys]
            if every and (step + 1) % every:  # only add up this step's gradients
                torch._foreach_add_(self._slot_list(keys, "gradient_accumulator"), gs, alpha=1.0)
            else:
                if every:
                    accumulated = self._slot_list(keys, "gradient_accumulator")
                    gs = [(g + a) / every for g, a in zip(gs, accumulated)]
                gs = self._clip(gs)
                device = gs[0].device
                rate = float(np.float32(lr))  # Keras holds the rate in float32
                lr32 = torch.tensor(rate, dtype=torch.float32, device=device)
                variables = [self.params[k].data for k in keys]
                if kw.get("weight_decay") is not None:
                    torch._foreach_mul_(variables, 1 - kw["weight_decay"] * lr32)
                context = _Context(self, keys, iterations, lr32, rate)
                self.rule(context, variables, gs)
                if every:
                    torch._foreach_mul_(accumulated, 0.0)
        if kw.get("use_ema"):
            self._moving_average(iterations)

    def _clip(self, grads: list) -> list:
        """Keras's _clip_gradients: clipnorm, else global_clipnorm, else clipvalue."""
        torch, kw = self.torch, self.kw
        clipnorm, global_clipnorm = kw.get("clipnorm"), kw.get("global_clipnorm")
        clipvalue = kw.get("clipvalue")
        if clipnorm and clipnorm > 0:
            out = []
            for g in grads:
                l2sum = torch.sum(torch.square(g), dim=None, keepdim=True)
                positive = l2sum > 0
                safe = torch.where(positive, l2sum, torch.ones_like(l2sum))
                l2norm = torch.where(positive, torch.sqrt(safe), l2sum)
                out.append(g * clipnorm / torch.clamp(l2norm, min=clipnorm))
            return out
        if global_clipnorm and global_clipnorm > 0:
            norms = torch.stack([torch.sum(torch.square(g)) for g in grads])
            norm = torch.sqrt(torch.sum(norms))
            scale = global_clipnorm * torch.clamp(1.0 / norm, max=1.0 / global_clipnorm)
            scale = scale + (norm - norm)  # NaN everywhere when the norm is not finite
            return [g * scale for g in grads]
        if clipvalue and clipvalue > 0:
            return [torch.clip(g, -clipvalue, clipvalue) for g in grads]
        return grads

    def _moving_average(self, iterations: int) -> None:
        """Keras's _update_model_variables_moving_average (every trainable parameter,
        momentum 0 on the first update), then ema_overwrite_frequency."""
        kw = self.kw
        momentum = kw.get("ema_momentum", 0.99) if iterations != 0 else 0.0
        m = self.torch.tensor(momentum, dtype=self.torch.float32)
        every = kw.get("ema_overwrite_frequency")
        for key, p in self.params.items():
            average = self.slots[f"{SLOT}{key}:average"]
            average.copy_(m * average + (1 - m) * p.data)
            if every and (iterations + 1) % every == 0:
                p.data.copy_(average)


class _Context:
    """What an update rule reads besides its parameters and gradients."""

    def __init__(self, opt: KerasOptimizer, keys: list[str], iterations: int, lr, rate):
        self.opt, self.keys, self.lr = opt, keys, lr  # lr: a float32 tensor
        self.rate = rate  # the same number as a Python float
        self.kw = opt.kw
        self.torch = opt.torch
        self.local_step = self.torch.tensor(
            float(iterations + 1), dtype=self.torch.float32, device=lr.device
        )
        self.iterations = iterations

    def slots(self, name: str) -> list:
        return self.opt._slot_list(self.keys, name)

    def power(self, base: float):
        """base ** (iterations + 1) in float32."""
        torch = self.torch
        return torch.pow(torch.tensor(base, dtype=torch.float32), self.local_step)


# ---------------------------------------------------------------- the update rules


def _sgd(c: _Context, variables: list, grads: list) -> None:
    torch, momentum = c.torch, c.kw.get("momentum", 0.0)
    lr = c.rate
    if not momentum:
        torch._foreach_add_(variables, grads, alpha=-lr)
        return
    buffers = c.slots("momentum")
    torch._foreach_mul_(buffers, momentum)
    torch._foreach_add_(buffers, grads, alpha=-lr)
    if c.kw.get("nesterov"):
        torch._foreach_add_(variables, grads, alpha=-lr)
        torch._foreach_add_(variables, buffers, alpha=momentum)
    else:
        torch._foreach_add_(variables, buffers)


def _rmsprop(c: _Context, variables: list, grads: list) -> None:
    torch, kw = c.torch, c.kw
    rho, momentum = kw.get("rho", 0.9), kw.get("momentum", 0.0)
    velocities = c.slots("velocity")
    torch._foreach_mul_(velocities, rho)
    torch._foreach_addcmul_(velocities, grads, grads, value=1 - rho)
    denominators = torch._foreach_add(velocities, kw.get("epsilon", 1e-7))
    if kw.get("centered"):
        averages = c.slots("average_gradient")
        torch._foreach_mul_(averages, rho)
        torch._foreach_add_(averages, grads, alpha=1 - rho)
        torch._foreach_addcmul_(denominators, averages, averages, value=-1)
    torch._foreach_sqrt_(denominators)  # epsilon inside the root, as Keras puts it
    if momentum > 0:
        buffers = c.slots("momentum")
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_addcdiv_(buffers, grads, denominators, value=c.rate)
        torch._foreach_add_(variables, buffers, alpha=-1)
    else:
        torch._foreach_addcdiv_(variables, grads, denominators, value=-c.rate)


def _moments(c: _Context, grads: list, beta_1: float, beta_2: float):
    """Adam's first and second moments, updated in place."""
    torch = c.torch
    m, v = c.slots("momentum"), c.slots("velocity")
    torch._foreach_mul_(m, beta_1)
    torch._foreach_add_(m, grads, alpha=1 - beta_1)
    torch._foreach_mul_(v, beta_2)
    torch._foreach_addcmul_(v, grads, grads, value=1 - beta_2)
    return m, v


def _adam(c: _Context, variables: list, grads: list) -> None:
    torch, kw = c.torch, c.kw
    beta_1, beta_2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    # Keras's step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), in float32
    f32 = np.float32
    t = f32(c.iterations + 1)
    root = np.sqrt(f32(1) - np.power(f32(beta_2), t))
    alpha = float(f32(c.rate) * root / (f32(1) - np.power(f32(beta_1), t)))
    m, v = _moments(c, grads, beta_1, beta_2)
    if kw.get("amsgrad"):
        v_hat = c.slots("velocity_hat")
        torch._foreach_maximum_(v_hat, v)
        v = v_hat
    denominators = torch._foreach_sqrt(v)
    torch._foreach_add_(denominators, kw.get("epsilon", 1e-7))
    torch._foreach_addcdiv_(variables, m, denominators, value=-alpha)


def _adagrad(c: _Context, variables: list, grads: list) -> None:
    torch, eps = c.torch, c.kw.get("epsilon", 1e-7)
    accumulators = c.slots("accumulator")
    torch._foreach_add_(accumulators, torch._foreach_mul(grads, grads))
    torch._foreach_add_(
        variables,
        torch._foreach_div(
            torch._foreach_mul(grads, c.lr),
            torch._foreach_sqrt(torch._foreach_add(accumulators, eps)),
        ),
        alpha=-1,
    )


def _adadelta(c: _Context, variables: list, grads: list) -> None:
    torch, kw = c.torch, c.kw
    rho, eps = kw.get("rho", 0.95), kw.get("epsilon", 1e-7)
    grad_acc, delta_acc = c.slots("accumulated_grad"), c.slots("accumulated_delta_var")
    torch._foreach_mul_(grad_acc, rho)
    torch._foreach_addcmul_(grad_acc, grads, grads, value=1 - rho)
    # delta = -sqrt(delta_acc + eps) * g / sqrt(grad_acc + eps), kept with its sign
    # flipped (the update subtracts it)
    deltas = torch._foreach_add(delta_acc, eps)
    torch._foreach_sqrt_(deltas)
    torch._foreach_mul_(deltas, grads)
    roots = torch._foreach_add(grad_acc, eps)
    torch._foreach_sqrt_(roots)
    torch._foreach_div_(deltas, roots)
    torch._foreach_mul_(delta_acc, rho)
    torch._foreach_addcmul_(delta_acc, deltas, deltas, value=1 - rho)
    torch._foreach_add_(variables, deltas, alpha=-c.rate)


def _adamax(c: _Context, variables: list, grads: list) -> None:
    torch, kw = c.torch, c.kw
    beta_1, beta_2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    correction = 1 - c.power(beta_1)
    m, u = c.slots("momentum"), c.slots("norm")
    torch._foreach_mul_(m, beta_1)
    torch._foreach_add_(m, grads, alpha=1 - beta_1)
    torch._foreach_mul_(u, beta_2)
    torch._foreach_maximum_(u, torch._foreach_abs(grads))
    torch._foreach_add_(
        variables,
        torch._foreach_div(
            torch._foreach_mul(m, c.lr),
            torch._foreach_mul(torch._foreach_add(u, kw.get("epsilon", 1e-7)), correction),
        ),
        alpha=-1,
    )


def _nadam(c: _Context, variables: list, grads: list) -> None:
    torch, kw = c.torch, c.kw
    beta_1, beta_2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
    f32 = torch.float32
    decay = torch.tensor(0.96, dtype=f32)
    b1 = torch.tensor(beta_1, dtype=f32)
    next_step = c.local_step + 1
    u_t = b1 * (1.0 - 0.5 * torch.pow(decay, c.local_step))
    u_t_1 = b1 * (1.0 - 0.5 * torch.pow(decay, next_step))
    u_product = c.opt.slots[f"{SHARED}u_product"]
    u_product_t = u_product * u_t
    u_product_t_1 = u_product_t * u_t_1
    u_product.copy_(u_product_t)
    m, v = _moments(c, grads, beta_1, beta_2)
    # Keras divides by these two as numpy numbers
    past, now = (1 - u_product_t_1).item(), (1 - u_product_t).item()
    m_hat = torch._foreach_add(
        torch._foreach_div(torch._foreach_mul(m, u_t_1), past),
        torch._foreach_div(torch._foreach_mul(grads, 1 - u_t), now),
    )
    v_hat = torch._foreach_div(v, 1 - c.power(beta_2))
    torch._foreach_add_(
        variables,
        torch._foreach_div(
            torch._foreach_mul(m_hat, c.lr),
            torch._foreach_add(torch._foreach_sqrt(v_hat), kw.get("epsilon", 1e-7)),
        ),
        alpha=-1,
    )


def _lion(c: _Context, variables: list, grads: list) -> None:
    torch, kw = c.torch, c.kw
    beta_1, beta_2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.99)
    m = c.slots("momentum")
    direction = torch._foreach_mul(m, beta_1)
    torch._foreach_add_(direction, grads, alpha=1 - beta_1)
    direction = [d.sign() for d in direction]
    torch._foreach_add_(variables, torch._foreach_mul(direction, c.lr), alpha=-1)
    torch._foreach_mul_(m, beta_2)
    torch._foreach_add_(m, grads, alpha=1 - beta_2)


RULES = {
    "SGD": _sgd,
    "RMSprop": _rmsprop,
    "Adam": _adam,
    "AdamW": _adam,  # Keras's AdamW is Adam with the base class's weight decay
    "Adagrad": _adagrad,
    "Adadelta": _adadelta,
    "Adamax": _adamax,
    "Nadam": _nadam,
    "Lion": _lion,
}
