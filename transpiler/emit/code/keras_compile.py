"""The train block as Keras code: the body of `compile_model(model)` (a
`model.compile(...)` call) and the `FIT_ARGS` settings for `model.fit`.
"""

from __future__ import annotations

from transpiler.emit.code.keras_args import normalized
from transpiler.emit.code.keras_names import checked, lit, pystr
from transpiler.emit.code.keras_render import INDENT, LINE, Atom, Expr, Pair, Seq, call, render


def _nondefault(entry, kwargs: dict, skip: tuple[str, ...] = ()) -> dict[str, Expr]:
    from transpiler.training.config import defaults

    base = defaults(entry) if entry is not None else {}
    out = {}
    for key, value in kwargs.items():
        if key in skip or (key in base and normalized(base[key]) == normalized(value)):
            continue
        out[checked(key)] = _train_value(value)
    return out


def _train_value(value) -> Expr:
    from transpiler.training.config import ScheduleSpec

    if isinstance(value, ScheduleSpec):
        from transpiler.training.schedules import SCHEDULES

        entry = SCHEDULES.find(value.name)
        kwargs = _nondefault(entry, value.kwargs)
        return call(f"keras.optimizers.schedules.{checked(value.name)}", **kwargs)
    return Atom(lit(value))


def compile_lines(config) -> tuple[list[str], list[str]]:
    """(lines of compile_model's body, lines of the FIT_ARGS assignment)."""
    from transpiler.training.config import TrainConfig
    from transpiler.training.losses import LOSSES
    from transpiler.training.metrics import METRICS
    from transpiler.training.optimizers import OPTIMIZERS

    opt = config.optimizer
    optimizer = call(
        f"keras.optimizers.{checked(opt.name)}",
        **_nondefault(OPTIMIZERS.find(opt.name), opt.kwargs),
    )
    outputs = list(config.outputs)
    single = len(outputs) == 1

    def loss_expr(spec) -> Expr:
        kwargs = _nondefault(LOSSES.find(spec.name), spec.kwargs)
        return call(f"keras.losses.{checked(spec.keras_class)}", **kwargs)

    def metric_expr(spec) -> Expr:
        kwargs = _nondefault(METRICS.find(spec.name), spec.kwargs, skip=("name",))
        if spec.log_name != spec.name:
            kwargs["name"] = Atom(pystr(spec.log_name))
        return call(f"keras.metrics.{checked(spec.keras_class)}", **kwargs)

    def per_output(values: dict, make, empty) -> Expr | None:
        if not values:
            return None
        if single:
            return make(values[outputs[0]]) if outputs[0] in values else None
        return Seq(
            "{", "}", [Pair(pystr(o), make(values[o]) if o in values else empty) for o in outputs]
        )

    kwargs: dict[str, Expr] = {"optimizer": optimizer}
    loss = per_output(config.loss, loss_expr, Atom("None"))
    if loss is not None:
        kwargs["loss"] = loss
    if any(w != 1.0 for w in config.loss_weights.values()):
        if single:
            kwargs["loss_weights"] = Seq("[", "]", [Atom(lit(config.loss_weights[outputs[0]]))])
        else:
            kwargs["loss_weights"] = Seq(
                "{",
                "}",
                [Pair(pystr(o), Atom(lit(w))) for o, w in config.loss_weights.items()],
            )
    for key in ("metrics", "weighted_metrics"):
        values = {o: ms for o, ms in getattr(config, key).items() if ms}

        def make(ms):
            return Seq("[", "]", [metric_expr(m) for m in ms])

        expr = per_output(values, make, Seq("[", "]", []))
        if expr is not None:
            kwargs[key] = expr
    if config.steps_per_execution != 1:
        kwargs["steps_per_execution"] = Atom(lit(config.steps_per_execution))
    body = render(call("model.compile", **kwargs), INDENT)

    defaults = {f.name: f.default for f in TrainConfig.__dataclass_fields__.values()}
    fit = {}
    for key in (
        "batch_size",
        "epochs",
        "validation_split",
        "shuffle",
        "steps_per_epoch",
        "initial_epoch",
        "validation_steps",
        "validation_batch_size",
        "validation_freq",
        "verbose",
    ):
        value = getattr(config, key)
        if key in ("batch_size", "epochs") or value != defaults.get(key):
            fit[key] = value
    fit_expr = Seq("{", "}", [Pair(pystr(k), Atom(lit(v))) for k, v in fit.items()])
    lines = render(fit_expr, 0, "FIT_ARGS = ")
    callbacks = [checked(c.name) for c in config.callbacks]
    if callbacks:
        note = "# not generated: the train block's callbacks, " + ", ".join(callbacks)
        if len(note) > LINE:
            note = f"# not generated: the train block's {len(callbacks)} callbacks"
        lines.append(note)
    return body, lines
