"""Train blocks: the catalogue's defaults against live Keras, normalised configs of valid
blocks, and broken blocks reported at the right line:column."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from transpiler.errors import KdlErrors
from transpiler.graph import load
from transpiler.layers.base import REQUIRED
from transpiler.training import (
    CALLBACKS,
    CATALOGUES,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    SCHEDULES,
    ScheduleSpec,
    TrainConfig,
    log_keys,
)
from transpiler.training.config import defaults

keras = pytest.importorskip("keras")

MODELS = """model M { input x: float32[4]
  Dense(3, activation=softmax) }
model Two { input x: float32[4]
  output a = Dense(1)(x)
  output b = Dense(4)(x) }
"""
HEAD_LINES = MODELS.count("\n")  # train blocks start on line HEAD_LINES + 1


def train(body: str, model: str = "M", name: str = "default") -> TrainConfig:
    _, graphs = load("t.kdl", text=MODELS + body + "\n")
    return graphs[model].trains[name]


def errors(body: str):
    with pytest.raises(KdlErrors) as info:
        load("t.kdl", text=MODELS + body + "\n")
    return sorted(info.value.errors, key=lambda e: (e.span.line, e.span.column))


# ---------------------------------------------------------------- the catalogue vs Keras

MODULES = {
    "losses": lambda: keras.losses,
    "optimizers": lambda: keras.optimizers,
    "metrics": lambda: keras.metrics,
    "callbacks": lambda: keras.callbacks,
    "schedules": lambda: keras.optimizers.schedules,
}
ENTRIES = [(kind, e) for kind, cat in CATALOGUES.items() for e in cat.entries]
SKIPPED = {"self", "name", "dtype", "kwargs", "args"}


def same(ours, theirs) -> bool:
    if isinstance(ours, float) and isinstance(theirs, (int, float)) and theirs is not None:
        return math.isclose(ours, theirs, rel_tol=1e-6)
    return ours == theirs


@pytest.mark.parametrize(("kind", "entry"), ENTRIES, ids=[f"{k}-{e.name}" for k, e in ENTRIES])
def test_defaults_match_keras_signature(kind, entry):
    cls = getattr(MODULES[kind](), entry.keras_class)
    params = inspect.signature(cls.__init__).parameters
    for arg in entry.args:
        assert arg.name in params, f"{entry.keras_class} has no argument {arg.name}"
        keras_default = params[arg.name].default
        if arg.default is REQUIRED:
            assert keras_default is inspect.Parameter.empty, arg.name
        elif arg.name != "name":
            assert same(arg.convert(arg.default), keras_default), arg.name
    # every Keras argument is covered (metrics also take `name`)
    ours = {a.name for a in entry.args}
    assert {p for p in params if p not in SKIPPED} <= ours
    # positional arguments bind as in Keras
    keras_order = [p for p in params if p not in ("self", "kwargs", "args")]
    limit = len(entry.args) if entry.positional is None else entry.positional
    assert [a.name for a in entry.args[:limit]] == keras_order[:limit]


@pytest.mark.parametrize(
    ("kind", "entry"),
    [(k, e) for k, e in ENTRIES if k in ("losses", "optimizers", "metrics")],
    ids=lambda x: getattr(x, "name", x),
)
def test_defaults_match_keras_get_config(kind, entry):
    obj = getattr(MODULES[kind](), entry.keras_class)()
    config = obj.get_config()
    for key, value in defaults(entry).items():
        if key in config and key != "name":
            assert same(value, config[key]), (key, value, config[key])
    # and Keras takes our normalised defaults as they are
    kwargs = {k: v for k, v in defaults(entry).items() if k != "name"}
    getattr(MODULES[kind](), entry.keras_class)(**kwargs)


def test_optimizer_defaults_from_keras():
    assert (
        keras.optimizers.Adam().get_config()["epsilon"]
        == defaults(OPTIMIZERS.find("adam"))["epsilon"]
    )
    assert defaults(OPTIMIZERS.find("sgd"))["learning_rate"] == 0.01
    assert defaults(OPTIMIZERS.find("adamw"))["weight_decay"] == 0.004


def test_names_keras_accepts():
    for name in ("mse", "MSE", "mae", "kld", "KLD", "bce", "mape", "msle", "BinaryCrossentropy"):
        assert LOSSES.find(name) is not None
        assert keras.losses.get(name) is not None
    for name in ("adam", "ADAM", "rmsprop", "Sgd", "adamw", "nadam"):
        assert OPTIMIZERS.find(name) is not None
        assert keras.optimizers.get(name.lower()) is not None
    for name in ("mse", "mae", "auc", "AUC", "precision", "Recall", "top_k_categorical_accuracy"):
        assert METRICS.find(name) is not None
        assert keras.metrics.get(name) is not None
    assert CALLBACKS.find("EarlyStopping") and SCHEDULES.find("CosineDecay")


# ---------------------------------------------------------------- valid blocks

MNIST = """train M {
    loss       = categorical_crossentropy
    optimizer  = RMSprop(learning_rate=0.001)
    metrics    = [accuracy]
    batch_size = 128
    epochs     = 20
    validation_split = 0.1
}"""


def test_mnist_block():
    c = train(MNIST)
    assert c.name == "default" and c.model == "M" and c.outputs == ["output"]
    assert c.loss["output"].name == "categorical_crossentropy"
    assert c.loss["output"].keras_class == "CategoricalCrossentropy"
    assert c.loss["output"].kwargs == {
        "from_logits": False,
        "label_smoothing": 0.0,
        "axis": -1,
        "reduction": "sum_over_batch_size",
    }
    assert c.loss_weights == {"output": 1.0}
    assert c.optimizer.name == "RMSprop"
    assert c.optimizer.kwargs["learning_rate"] == 0.001
    assert c.optimizer.kwargs["rho"] == 0.9 and c.optimizer.kwargs["centered"] is False
    [acc] = c.metrics["output"]
    assert (acc.name, acc.keras_class, acc.log_name, acc.alias) == (
        "categorical_accuracy",
        "CategoricalAccuracy",
        "accuracy",
        "accuracy",
    )
    assert (c.batch_size, c.epochs, c.validation_split, c.shuffle) == (128, 20, 0.1, True)
    assert c.callbacks == [] and c.initial_epoch == 0 and c.verbose == "auto"


TRIAGE = """train Two as fast {
    loss = { a: binary_crossentropy(from_logits=true),
             b: categorical_crossentropy(from_logits=true) }
    loss_weights = { a: 1.0, b: 0.2 }
    optimizer = Adam(learning_rate=ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.9),
                     clipnorm=1.0)
    metrics = { b: [accuracy, top_k_categorical_accuracy(k=2)] }
    callbacks = [EarlyStopping(monitor=val_loss, patience=3),
                 ModelCheckpoint(filepath="ckpt.keras", save_best_only=true)]
    shuffle = false
}"""


def test_triage_block():
    c = train(TRIAGE, "Two", "fast")
    assert c.name == "fast" and c.outputs == ["a", "b"]
    assert c.loss["a"].name == "binary_crossentropy" and c.loss["a"].kwargs["from_logits"]
    assert c.loss["b"].kwargs["from_logits"] is True
    assert c.loss_weights == {"a": 1.0, "b": 0.2}
    lr = c.optimizer.kwargs["learning_rate"]
    assert lr == ScheduleSpec(
        "ExponentialDecay",
        {"initial_learning_rate": 1e-3, "decay_steps": 1000, "decay_rate": 0.9, "staircase": False},
    )
    assert c.optimizer.kwargs["clipnorm"] == 1.0 and c.optimizer.kwargs["beta_2"] == 0.999
    acc, top = c.metrics["b"]
    assert acc.name == "categorical_accuracy" and top.kwargs == {"k": 2}
    assert top.log_name == "top_k_categorical_accuracy"
    early, ckpt = c.callbacks
    assert early.kwargs == {
        "monitor": "val_loss",
        "min_delta": 0.0,
        "patience": 3,
        "verbose": 0,
        "mode": "auto",
        "baseline": None,
        "restore_best_weights": False,
        "start_from_epoch": 0,
    }
    assert ckpt.kwargs["save_freq"] == "epoch" and ckpt.kwargs["save_best_only"] is True
    assert c.shuffle is False


def test_default_optimizer_is_rmsprop():
    c = train("train M { loss = mse }")
    assert c.optimizer.name == "RMSprop" and c.optimizer.kwargs["learning_rate"] == 0.001
    assert c.loss["output"].name == "mean_squared_error"


@pytest.mark.parametrize(
    ("written", "name", "lr"),
    [
        ("adam", "Adam", 0.001),
        ('"sgd"', "SGD", 0.01),
        ("ADAMW", "AdamW", 0.001),
        ("Nadam", "Nadam", 0.001),
    ],
)
def test_bare_optimizer_names(written, name, lr):
    c = train(f"train M {{ loss = mse\n optimizer = {written} }}")
    assert c.optimizer.name == name and c.optimizer.kwargs["learning_rate"] == lr


def test_positional_optimizer_args_and_consts():
    c = train("const lr = 1e-2\ntrain M { loss = mse\n optimizer = SGD(lr, 0.9, true) }")
    assert c.optimizer.kwargs["learning_rate"] == 0.01
    assert c.optimizer.kwargs["momentum"] == 0.9 and c.optimizer.kwargs["nesterov"] is True


@pytest.mark.parametrize(
    ("written", "name", "kwargs"),
    [
        ("BinaryCrossentropy(from_logits=true)", "binary_crossentropy", {"from_logits": True}),
        ("MeanSquaredError", "mean_squared_error", {}),
        ("mae", "mean_absolute_error", {}),
        ("kld", "kl_divergence", {}),
        ("huber(delta=2)", "huber", {"delta": 2.0}),
        ("Huber()", "huber", {"delta": 1.0}),
        (
            "sparse_categorical_crossentropy(ignore_class=0)",
            "sparse_categorical_crossentropy",
            {"ignore_class": 0, "axis": -1},
        ),
        (
            "categorical_crossentropy(label_smoothing=0.1)",
            "categorical_crossentropy",
            {"label_smoothing": 0.1},
        ),
        (
            "BinaryFocalCrossentropy(gamma=3)",
            "binary_focal_crossentropy",
            {"gamma": 3.0, "alpha": 0.25},
        ),
    ],
)
def test_loss_names(written, name, kwargs):
    spec = train(f"train M {{ loss = {written} }}").loss["output"]
    assert spec.name == name
    assert spec.kwargs["reduction"] == "sum_over_batch_size"
    assert kwargs.items() <= spec.kwargs.items()


@pytest.mark.parametrize(
    ("model", "loss", "expected"),
    [
        ("M", "categorical_crossentropy", "categorical_accuracy"),
        ("M", "sparse_categorical_crossentropy", "sparse_categorical_accuracy"),
        ("M", "binary_crossentropy", "categorical_accuracy"),  # Keras: by shape only
        ("M", "mse", "categorical_accuracy"),
    ],
)
def test_accuracy_resolution(model, loss, expected):
    c = train(f"train {model} {{ loss = {loss}\n metrics = [acc] }}", model)
    [m] = c.metrics["output"]
    assert (m.name, m.log_name, m.alias) == (expected, "acc", "acc")


def test_accuracy_on_one_unit_is_binary():
    c = train("train Two { loss = mse\n metrics = {a: [accuracy], b: accuracy} }", "Two")
    assert c.metrics["a"][0].name == "binary_accuracy"
    assert c.metrics["b"][0].name == "categorical_accuracy"


def test_two_outputs_loss_forms():
    c = train("train Two { loss = mse }", "Two")
    assert list(c.loss) == ["a", "b"] and c.loss_weights == {"a": 1.0, "b": 1.0}
    c = train("train Two { loss = [binary_crossentropy, none]\n loss_weights = [2, 0] }", "Two")
    assert list(c.loss) == ["a"] and c.loss_weights == {"a": 2.0}
    c = train("train Two { loss = {b: mae, a: none}\n loss_weights = {b: 0.5} }", "Two")
    assert list(c.loss) == ["b"] and c.loss_weights == {"b": 0.5}


def test_two_outputs_metric_forms():
    c = train("train Two { loss = mse\n metrics = [mae, [mse, auc]] }", "Two")
    assert [m.name for m in c.metrics["a"]] == ["mean_absolute_error"]
    assert [m.log_name for m in c.metrics["b"]] == ["mse", "auc"]
    c = train("train Two { loss = mse\n metrics = [none, Precision(top_k=2)] }", "Two")
    assert "a" not in c.metrics and c.metrics["b"][0].kwargs["top_k"] == 2


def test_confusion_metrics():
    c = train(
        "train M { loss = mse\n metrics = [Precision(), recall(thresholds=[0.3, 0.6]),"
        ' AUC(curve=pr, name="pr_auc"), auc] }'
    )
    p, r, auc, auc2 = c.metrics["output"]
    assert (p.name, p.log_name, p.kwargs) == (
        "precision",
        "precision",
        {"thresholds": None, "top_k": None, "class_id": None},
    )
    assert r.kwargs["thresholds"] == [0.3, 0.6]
    assert auc.kwargs["curve"] == "PR" and auc.log_name == "pr_auc"
    assert auc.kwargs["num_thresholds"] == 200 and auc2.kwargs["curve"] == "ROC"


@pytest.mark.parametrize(
    ("written", "name", "kwargs"),
    [
        (
            "ExponentialDecay(0.1, 100, 0.5, true)",
            "ExponentialDecay",
            {
                "initial_learning_rate": 0.1,
                "decay_steps": 100,
                "decay_rate": 0.5,
                "staircase": True,
            },
        ),
        (
            "CosineDecay(0.1, decay_steps=100, warmup_target=0.2, warmup_steps=10)",
            "CosineDecay",
            {
                "initial_learning_rate": 0.1,
                "decay_steps": 100,
                "alpha": 0.0,
                "warmup_target": 0.2,
                "warmup_steps": 10,
            },
        ),
        (
            "PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001])",
            "PiecewiseConstantDecay",
            {"boundaries": [100, 200], "values": [0.1, 0.01, 0.001]},
        ),
        (
            "InverseTimeDecay(0.1, 10, 0.5)",
            "InverseTimeDecay",
            {
                "initial_learning_rate": 0.1,
                "decay_steps": 10,
                "decay_rate": 0.5,
                "staircase": False,
            },
        ),
        (
            "PolynomialDecay(0.1, 10)",
            "PolynomialDecay",
            {
                "initial_learning_rate": 0.1,
                "decay_steps": 10,
                "end_learning_rate": 0.0001,
                "power": 1.0,
                "cycle": False,
            },
        ),
        (
            "CosineDecayRestarts(0.1, 10)",
            "CosineDecayRestarts",
            {
                "initial_learning_rate": 0.1,
                "first_decay_steps": 10,
                "t_mul": 2.0,
                "m_mul": 1.0,
                "alpha": 0.0,
            },
        ),
    ],
)
def test_schedules(written, name, kwargs):
    lr = train(f"train M {{ loss = mse\n optimizer = SGD(learning_rate={written}) }}").optimizer
    assert lr.kwargs["learning_rate"] == ScheduleSpec(name, kwargs)


def test_callbacks_and_settings():
    c = train(
        """train M { loss = mse
        metrics = [accuracy]
        callbacks = [EarlyStopping(val_accuracy, patience=2),
                     ReduceLROnPlateau(monitor=loss, factor=0.5),
                     ModelCheckpoint("m-{epoch:02d}-{val_accuracy:.2f}.keras"),
                     CSVLogger("log.csv", append=true), TerminateOnNaN(),
                     LearningRateScheduler(schedule=ExponentialDecay(0.1, 1, 0.9))]
        steps_per_epoch = 10
        initial_epoch = 2
        epochs = 5
        validation_steps = 3
        validation_freq = 2
        verbose = 2
        steps_per_execution = 4 }"""
    )
    names = [cb.name for cb in c.callbacks]
    assert names == [
        "EarlyStopping",
        "ReduceLROnPlateau",
        "ModelCheckpoint",
        "CSVLogger",
        "TerminateOnNaN",
        "LearningRateScheduler",
    ]
    assert c.callbacks[0].kwargs["monitor"] == "val_accuracy"
    assert c.callbacks[1].kwargs["min_delta"] == 1e-4 and c.callbacks[1].kwargs["cooldown"] == 0
    assert c.callbacks[3].kwargs == {"filename": "log.csv", "separator": ",", "append": True}
    assert isinstance(c.callbacks[5].kwargs["schedule"], ScheduleSpec)
    assert (c.steps_per_epoch, c.initial_epoch, c.epochs, c.validation_steps) == (10, 2, 5, 3)
    assert (c.validation_freq, c.verbose, c.steps_per_execution) == (2, 2, 4)


def test_single_callback_and_per_output_monitor():
    c = train(
        "train Two { loss = mse\n metrics = {b: [accuracy]}\n"
        " callbacks = EarlyStopping(monitor=val_b_accuracy, mode=max) }",
        "Two",
    )
    assert c.callbacks[0].kwargs["mode"] == "max"


def test_train_block_of_unwanted_model_is_skipped():
    _, graphs = load("t.kdl", text=MODELS + "train Two { loss = bogus }\n", models=["M"])
    assert "Two" not in graphs and graphs["M"].trains == {}


def test_several_train_blocks():
    _, graphs = load("t.kdl", text=MODELS + "train M { loss = mse }\ntrain M as b { loss = mae }")
    assert sorted(graphs["M"].trains) == ["b", "default"]


# ---------------------------------------------------------------- against a real Keras fit


def _instantiate(module, spec, **extra):
    kwargs = {
        k: _instantiate(keras.optimizers.schedules, v) if isinstance(v, ScheduleSpec) else v
        for k, v in spec.kwargs.items()
    }
    cls = getattr(module, getattr(spec, "keras_class", spec.name))
    return cls(**kwargs, **extra)


@pytest.mark.parametrize(
    "body",
    [
        "loss = mse\n metrics = {b: [accuracy, mae, mae]}\n weighted_metrics = {b: [mae]}",
        "loss = {a: binary_crossentropy, b: none}\n metrics = [[acc], [auc, Precision()]]",
        "loss = [mse, categorical_crossentropy(from_logits=true)]\n loss_weights = [1, 0.5]"
        "\n optimizer = Adam(CosineDecay(1e-3, 10), clipnorm=1.0)",
    ],
)
def test_log_keys_match_keras_history(body, tmp_path):
    c = train(f"train Two {{ {body} }}", "Two")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, [keras.layers.Dense(1, name="a")(x), keras.layers.Dense(4, name="b")(x)])
    losses = [_instantiate(keras.losses, c.loss[o]) if o in c.loss else None for o in c.outputs]

    def metric_lists(group):
        return [
            [_instantiate(keras.metrics, m, name=m.log_name) for m in group.get(o, [])]
            for o in c.outputs
        ]

    model.compile(
        optimizer=_instantiate(keras.optimizers, c.optimizer),
        loss=losses,
        loss_weights=[c.loss_weights.get(o, 1.0) for o in c.outputs],
        metrics=metric_lists(c.metrics),
        weighted_metrics=metric_lists(c.weighted_metrics),
    )
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(16, 4)).astype("float32")
    ys = [
        rng.integers(0, 2, (16, 1)).astype("float32"),
        np.eye(4, dtype="float32")[rng.integers(0, 4, 16)],
    ]
    history = model.fit(xs, ys, epochs=1, verbose=0, validation_split=0.25).history
    keys = log_keys(c.outputs, c.loss, c.metrics, c.weighted_metrics)
    assert set(history) == set(keys) | {f"val_{k}" for k in keys}


def test_specs_construct_in_keras():
    c = train(
        """train M { loss = CategoricalFocalCrossentropy(gamma=1)
        optimizer = AdamW(learning_rate=PiecewiseConstantDecay([10], [0.1, 0.01]))
        metrics = [accuracy, TopKCategoricalAccuracy(2), AUC(multi_label=true, num_labels=3)]
        callbacks = [EarlyStopping(), ModelCheckpoint("w.weights.h5", save_weights_only=true),
                     TerminateOnNaN(raise_error=true)] }"""
    )
    _instantiate(keras.losses, c.loss["output"])
    _instantiate(keras.optimizers, c.optimizer)
    for m in c.metrics["output"]:
        _instantiate(keras.metrics, m, name=m.log_name)
    for cb in c.callbacks:
        _instantiate(keras.callbacks, cb)


@pytest.mark.parametrize(
    ("filepath", "weights_only", "ours", "keras_takes"),
    [
        ("best.keras", False, True, True),
        ("w.weights.h5", True, True, True),
        ("best.onnx", False, True, False),  # ktrans's own: the ONNX inference model
        ("best.h5", False, False, True),  # Keras 3's legacy whole-model HDF5: not written
        ("w.keras", True, False, False),
        ("w.onnx", True, False, False),
        ("best.weights.h5", False, False, True),
        ("best.pt", False, False, False),
    ],
)
def test_checkpoint_extensions_follow_keras(filepath, weights_only, ours, keras_takes):
    """What ModelCheckpoint accepts is what Keras 3 accepts, except the legacy .h5 (not
    written) and .onnx (ktrans's)."""
    flag = "true" if weights_only else "false"
    body = (
        f'train M {{ loss = mse\n callbacks = [ModelCheckpoint("{filepath}", '
        f"save_weights_only={flag})] }}"
    )
    if ours:
        assert train(body).callbacks[0].kwargs["filepath"] == filepath
    else:
        with pytest.raises(KdlErrors, match="ModelCheckpoint"):
            train(body)
    try:
        keras.callbacks.ModelCheckpoint(filepath, save_weights_only=weights_only)
        taken = True
    except ValueError:
        taken = False
    assert taken == keras_takes


# ---------------------------------------------------------------- broken blocks

L = HEAD_LINES + 1  # the line of `train`
# fmt: off
BROKEN = [
    # (id, train block(s), line, column, message, hint fragment or None)
    ("unknown-model", "train Mm { loss = mse }",
     L, 7, "train block for unknown model 'Mm'", "did you mean 'M'?"),
    ("duplicate", "train M { loss = mse }\ntrain M { loss = mae }",
     L + 1, 7, "model 'M' has two train blocks", "the first is at t.kdl:6:7"),
    ("duplicate-named", "train M as f { loss = mse }\ntrain M as f { loss = mae }",
     L + 1, 7, "model 'M' has two train blocks named 'f'", None),
    ("no-loss", "train M { epochs = 3 }",
     L, 1, "the train block for 'M' has no loss", "loss = categorical_crossentropy"),
    ("lr-setting", "train M { loss = mse\n lr = 0.1 }",
     L + 1, 2, "unknown train setting 'lr'", "optimizer = Adam(learning_rate=1e-3)"),
    ("typo-setting", "train M { loss = mse\n epoch = 3 }",
     L + 1, 2, "unknown train setting 'epoch'", "did you mean 'epochs'?"),
    ("set-twice", "train M { loss = mse\n loss = mae }",
     L + 1, 2, "'loss' is set twice in this train block", "line 6"),
    ("batch-size", "train M { loss = mse\n batch_size = 0 }",
     L + 1, 15, "batch_size expected a positive integer, got 0", None),
    ("validation-split", "train M { loss = mse\n validation_split = 1.0 }",
     L + 1, 21, "validation_split expected a number in [0, 1), got 1", None),
    ("shuffle", 'train M { loss = mse\n shuffle = "yes" }',
     L + 1, 12, "shuffle expected true or false, got 'yes'", None),
    ("unknown-loss", "train M { loss = categorial_crossentropy }",
     L, 18, "unknown loss 'categorial_crossentropy'",
     "did you mean 'categorical_crossentropy'?"),
    ("keras2-loss", "train M { loss = kullback_leibler_divergence }",
     L, 18, "unknown loss 'kullback_leibler_divergence'", "Keras 3 calls it 'kl_divergence'"),
    ("auto-crossentropy", "train M { loss = crossentropy }",
     L, 18, "unknown loss 'crossentropy'", "name one of them"),
    ("cce-one-unit", "train Two { loss = categorical_crossentropy }",
     L, 20, "categorical_crossentropy on output 'a' needs one output unit per class; "
     "this output has 1", "use binary_crossentropy for one output unit"),
    ("sparse-one-unit", "train Two { loss = [sparse_categorical_crossentropy, mse] }",
     L, 21, "sparse_categorical_crossentropy on output 'a' needs one output unit per class",
     None),
    ("loss-unknown-output", "train Two { loss = {a: mse, bb: mse, b: mse} }",
     L, 29, "loss: the model has no output 'bb'", "did you mean 'b'?"),
    ("loss-missing-output", "train Two { loss = {a: mse} }",
     L, 20, "loss: the dict has no entry for output 'b'", "write b: none"),
    ("loss-list-length", "train Two { loss = [mse, mse, mse] }",
     L, 20, "loss: expected one loss per output (2: a, b); got 3", None),
    ("loss-none", "train M { loss = none }",
     L, 18, "expected a loss, got none", None),
    ("loss-bad-kwarg", "train M { loss = BinaryCrossentropy(from_logit=true) }",
     L, 37, "BinaryCrossentropy has no argument 'from_logit'", "did you mean 'from_logits'?"),
    ("loss-reduction-none", "train M { loss = mse(reduction=none) }",
     L, 32, "mse: reduction expected one of sum_over_batch_size", "reduce to one number"),
    ("adam-negative-lr", "train M { loss = mse\n optimizer = Adam(learning_rate=-1) }",
     L + 1, 33, "Adam: learning_rate expected a positive number, got -1", None),
    ("two-clips", "train M { loss = mse\n optimizer = Adam(clipnorm=1.0, clipvalue=0.5) }",
     L + 1, 33, "Adam: only one of clipnorm, clipvalue and global_clipnorm can be set", None),
    ("sgd-momentum", "train M { loss = mse\n optimizer = SGD(momentum=1.5) }",
     L + 1, 27, "SGD: momentum expected a number in [0, 1], got 1.5", None),
    ("adamw-no-decay", "train M { loss = mse\n optimizer = AdamW(weight_decay=none) }",
     L + 1, 33, "AdamW: weight_decay expected a number, got none", None),
    ("unknown-optimizer", 'train M { loss = mse\n optimizer = "adamm" }',
     L + 1, 14, "unknown optimizer 'adamm'", "did you mean 'Adam'?"),
    ("const-optimizer",
     "const opt = Adam(learning_rate=-1)\ntrain M { loss = mse\n optimizer = opt }",
     L, 32, "Adam: learning_rate expected a positive number", None),
    ("schedule-missing-arg",
     "train M { loss = mse\n optimizer = SGD(ExponentialDecay(0.1, decay_steps=10)) }",
     L + 1, 18, "ExponentialDecay needs the argument 'decay_rate'", None),
    ("piecewise-lengths",
     "train M { loss = mse\n"
     " optimizer = SGD(learning_rate=PiecewiseConstantDecay([10, 20], [0.1, 0.01])) }",
     L + 1, 65, "PiecewiseConstantDecay: values needs one more entry than boundaries", None),
    ("schedule-decay-steps", "train M { loss = mse\n optimizer = SGD(CosineDecay(0.1, 0)) }",
     L + 1, 35, "CosineDecay: decay_steps expected a positive integer, got 0", None),
    ("metrics-flat-two-outputs", "train Two { loss = mse\n metrics = [accuracy] }",
     L + 1, 12, "metrics: a model with 2 outputs takes a dict by output name",
     "metrics = {b: [accuracy]}"),
    ("metrics-not-list", "train M { loss = mse\n metrics = accuracy }",
     L + 1, 12, "metrics: expected a list of metrics or a dict by output name, got accuracy",
     "write metrics = [accuracy]"),
    ("metrics-unknown-output", "train Two { loss = mse\n metrics = {c: [mae]} }",
     L + 1, 13, "metrics: the model has no output 'c'", "the model's outputs: a, b"),
    ("top-k-too-big", "train M { loss = mse\n metrics = [mae, top_k_categorical_accuracy] }",
     L + 1, 18, "top_k_categorical_accuracy has k=5, more than the 3 classes of this output",
     "use k <= 3"),
    ("accuracy-call", "train M { loss = mse\n metrics = [accuracy(threshold=0.7)] }",
     L + 1, 13, "accuracy() takes no arguments", "binary_accuracy(threshold=0.7)"),
    ("categorical-accuracy-one-unit",
     "train Two { loss = mse\n metrics = {a: [categorical_accuracy]} }",
     L + 1, 17, "categorical_accuracy on output 'a' needs one output unit per class",
     "use binary_accuracy"),
    ("auc-num-labels", "train M { loss = mse\n metrics = [AUC(num_labels=3)] }",
     L + 1, 17, "AUC: num_labels needs multi_label=true", None),
    ("precision-class-id", "train M { loss = mse\n metrics = [Precision(class_id=5)] }",
     L + 1, 13, "Precision has class_id=5, but this output has 3 units", "from 0 to 2"),
    ("monitor-typo",
     "train M { loss = mse\n metrics = [accuracy]\n"
     " callbacks = [EarlyStopping(monitor=val_acc)] }",
     L + 2, 37, "EarlyStopping: monitor 'val_acc' is not logged by this train block",
     "did you mean 'val_accuracy'?"),
    ("monitor-needs-mode",
     "train Two { loss = mse\n metrics = {b: [accuracy]}\n"
     " callbacks = [EarlyStopping(monitor=val_b_accuracy)] }",
     L + 2, 37, "EarlyStopping: Keras cannot tell whether 'val_b_accuracy' should go up or down",
     "add mode=max"),
    ("monitor-per-output-loss",
     "train Two { loss = mse\n callbacks = [ReduceLROnPlateau(a_loss)] }",
     L + 1, 33, "ReduceLROnPlateau: Keras cannot tell whether 'a_loss' should go up or down",
     "mode=min"),
    ("lr-callback-with-schedule",
     "train M { loss = mse\n optimizer = Adam(CosineDecay(1e-3, 100))\n"
     " callbacks = ReduceLROnPlateau() }",
     L + 2, 14, "ReduceLROnPlateau sets the learning rate, but the optimizer's learning_rate "
     "is a schedule", None),
    ("checkpoint-extension",
     "train M { loss = mse\n"
     ' callbacks = [ModelCheckpoint(filepath="ckpt", save_best_only=true)] }',
     L + 1, 40, 'ModelCheckpoint: filepath must end in ".keras"', 'filepath="ckpt.keras"'),
    ("checkpoint-other-extension",
     'train M { loss = mse\n callbacks = [ModelCheckpoint("best.pt")] }',
     L + 1, 31, 'ModelCheckpoint: filepath must end in ".keras" (a Keras 3 archive) or '
     '".onnx"', 'filepath="best.pt.keras"'),
    ("checkpoint-legacy-h5",
     'train M { loss = mse\n callbacks = [ModelCheckpoint("best.h5")] }',
     L + 1, 31, 'ModelCheckpoint: filepath "best.h5": ktrans does not write the legacy Keras '
     '".h5" model format', 'write "best.keras"'),
    ("checkpoint-weights-only-keras",
     'train M { loss = mse\n callbacks = [ModelCheckpoint("w.keras", save_weights_only=true)] }',
     L + 1, 31, 'ModelCheckpoint: with save_weights_only=true filepath must end in ".weights.h5"',
     'write ".keras" or ".onnx"'),
    ("checkpoint-weights-file-needs-weights-only",
     'train M { loss = mse\n callbacks = [ModelCheckpoint("w.weights.h5")] }',
     L + 1, 31, 'ModelCheckpoint: filepath "w.weights.h5" needs save_weights_only=true',
     "legacy whole-model .h5 format"),
    ("checkpoint-weights-only-onnx",
     'train M { loss = mse\n callbacks = [ModelCheckpoint("w.onnx", save_weights_only=true)] }',
     L + 1, 31, 'with save_weights_only=true filepath must end in ".weights.h5"; got "w.onnx"',
     None),
    ("checkpoint-placeholder",
     'train M { loss = mse\n callbacks = [ModelCheckpoint("c-{epoch}-{val_acc:.2f}.keras")] }',
     L + 1, 31, "ModelCheckpoint: filepath uses '{val_acc}', which is not logged", None),
    ("unknown-callback", "train M { loss = mse\n callbacks = [early_stopping(patience=2)] }",
     L + 1, 15, "unknown callback 'early_stopping'", "did you mean 'EarlyStopping'?"),
    ("rlr-factor", "train M { loss = mse\n callbacks = [ReduceLROnPlateau(factor=1.0)] }",
     L + 1, 40, "ReduceLROnPlateau: factor expected a number in (0, 1), got 1", None),
    ("lr-scheduler-number", "train M { loss = mse\n callbacks = [LearningRateScheduler(0.1)] }",
     L + 1, 37, "LearningRateScheduler: schedule expected a schedule, got 0.1", None),
    ("loss-weight-negative", "train M { loss = mse\n loss_weights = -1 }",
     L + 1, 17, "loss_weights expected a non-negative number, got -1", None),
    ("loss-weight-scalar-two-outputs", "train Two { loss = mse\n loss_weights = 0.5 }",
     L + 1, 17, "loss_weights: a model with 2 outputs takes a list or a dict by output name",
     None),
    ("loss-weight-no-loss",
     "train Two { loss = {a: mse, b: none}\n loss_weights = {a: 1, b: 2.0} }",
     L + 1, 24, "loss_weights: output 'b' has no loss to weigh", None),
    ("initial-epoch", "train M { loss = mse\n epochs = 5\n initial_epoch = 5 }",
     L + 2, 18, "initial_epoch 5 is not before epochs (5)", None),
    ("verbose", "train M { loss = mse\n verbose = 3 }",
     L + 1, 12, 'verbose expected "auto", 0, 1 or 2, got 3', None),
    ("bad-expression", 'train M { loss = mse\n epochs = 2 + "a" }',
     L + 1, 11, "'+' needs tensors or numbers", None),
]
# fmt: on


@pytest.mark.parametrize(
    ("source", "line", "column", "message", "hint"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken(source, line, column, message, hint):
    errs = errors(source)
    err = errs[0]
    assert (err.span.file, err.span.line, err.span.column) == ("t.kdl", line, column), err
    assert message in err.message
    if hint is not None:
        assert err.hint is not None and hint in err.hint


def test_every_error_is_reported():
    errs = errors(
        "train Two { loss = {a: mse, bb: mse}\n optimizer = Adam(beta_1=2)\n"
        " metrics = {b: [nope]}\n epochs = 0 }"
    )
    messages = [e.message for e in errs]
    assert len(errs) == 5, messages
    assert "loss: the model has no output 'bb'" in messages
    assert "unknown metric 'nope'" in messages


def test_no_config_on_error():
    with pytest.raises(KdlErrors):
        load("t.kdl", text=MODELS + "train M { loss = mse\n epochs = 0 }")


def test_docs_list_every_name():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    for _, entry in ENTRIES:
        assert f"`{entry.name}`" in doc, entry.name
        for alias in entry.aliases:
            assert f"`{alias}`" in doc, alias
    for key in ("loss", "optimizer", "metrics", "weighted_metrics", "loss_weights", "callbacks"):
        assert f"`{key}`" in doc
    from transpiler.graph.train_check import SETTINGS

    for key in SETTINGS:
        assert f"`{key}`" in doc, key


MASKED = """model Tagger { input ids: int32[5]
  Embedding(10, 4, mask_zero=true)
  LSTM(4, return_sequences=true)
  Dense(3, activation=softmax) }
train Tagger { loss = sparse_categorical_crossentropy
  metrics = [precision, METRIC] }
"""


def test_a_metric_on_a_masked_output_is_reported_at_the_metric():
    """Keras weights a mean metric's timesteps by the output's mask, which ktrans does not
    reproduce: `check` says so at the metric (before: ok, then codegen failed)."""
    with pytest.raises(KdlErrors) as info:
        load("t.kdl", text=MASKED.replace("METRIC", "accuracy"))
    (err,) = info.value.errors
    assert (err.span.line, err.span.column) == (6, 25), err
    assert err.message.startswith(
        "the metric sparse_categorical_accuracy of output 'output': that output carries a "
        "Keras mask (from Embedding(mask_zero=true))"
    )
    assert "use one that ignores masks (auc, precision, recall" in err.hint


def test_metrics_that_ignore_a_mask_and_unmasked_outputs_check():
    _, graphs = load("t.kdl", text=MASKED.replace("METRIC", "recall"))
    assert [m.name for m in graphs["Tagger"].trains["default"].metrics["output"]] == [
        "precision",
        "recall",
    ]
    unmasked = MASKED.replace("METRIC", "accuracy").replace("mask_zero=true", "mask_zero=false")
    load("t.kdl", text=unmasked)  # no error
