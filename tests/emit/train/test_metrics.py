"""Every metric against Keras 3's evaluate() over several batches (the last one short):
ktrans's per-batch statistics, combined and finalized as metric_plan says (through
evaluate_plan, the reference of the training loop), equal Keras's results."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.keras_oracle import build, compile_like, ktrans_graph, set_keras_weights
from transpiler.emit.train.metrics import evaluate_plan, log_names, metric_plan, metric_shapes
from transpiler.emit.train.names import LR_INPUT, STEP_INPUT

keras = pytest.importorskip("keras")
L = keras.layers

KDL = """
model M {{
    input x: float32[6]
    Dense(8, activation=tanh)
    Dense({units}, activation={activation})
}}
train M {{
    loss = {loss}
    optimizer = SGD(learning_rate=0.1)
    metrics = [{metrics}]
    {extra}
}}
"""


def evaluate_both(tmp_path, units, activation, loss, metrics, y, extra="", batch_size=16):
    from transpiler.emit.onnx import initial_weights
    from transpiler.runtime.session import create_session

    graph = ktrans_graph(
        KDL.format(units=units, activation=activation, loss=loss, metrics=metrics, extra=extra),
        tmp_path,
    )
    config = graph.trains["default"]
    weights = initial_weights(graph, seed=5)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(len(y), 6)).astype(np.float32) * 2

    inp = keras.Input((6,))
    h = L.Dense(8, activation="tanh")(inp)
    km = keras.Model(inp, L.Dense(units, activation=activation)(h))
    set_keras_weights(km, graph, weights)
    compile_like(km, config)
    expected = km.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)

    tm = build(graph, config, weights)
    session = create_session(tm.proto)
    names = [o.name for o in session.get_outputs()]
    state = {**tm.params, **tm.buffers, **tm.slots}
    batches, sizes = [], []
    for start in range(0, len(y), batch_size):
        feed = {"x": x[start : start + batch_size], "target:output": y[start : start + batch_size]}
        feed.update(
            state, **{STEP_INPUT: np.array(0, np.int64), LR_INPUT: np.array(0.0, np.float32)}
        )
        batches.append(dict(zip(names, session.run(None, feed))))
        sizes.append(len(feed["x"]))
    plan = metric_plan(config)
    logs = evaluate_plan(plan, batches, sizes)
    return expected, logs, plan


def check(expected, logs, rtol=1e-5, atol=1e-6):
    assert set(logs) == set(expected) - {"loss"}, (sorted(logs), sorted(expected))
    for key, value in logs.items():
        np.testing.assert_allclose(value, expected[key], rtol=rtol, atol=atol, err_msg=key)


def labels(kind, n, units, seed=3):
    rng = np.random.default_rng(seed)
    if kind == "binary":
        return rng.integers(0, 2, (n, units)).astype(np.float32)
    if kind == "onehot":
        return np.eye(units, dtype=np.float32)[rng.integers(0, units, n)]
    if kind == "ids":
        return rng.integers(0, units, n).astype(np.int64)
    return rng.normal(size=(n, units)).astype(np.float32)


BINARY = [
    "accuracy, binary_accuracy(threshold=0.7)",
    "precision, recall, Precision(thresholds=[0.3, 0.6], name=p2), "
    "Recall(thresholds=0.8, name=r08)",
    "precision(top_k=2, name=ptop), recall(class_id=1, name=r1), "
    "precision(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0], name=peven)",
    "auc, AUC(curve=PR, name=pr), AUC(curve=PRGAIN, name=gain)",
    "auc(num_thresholds=17, summation_method=minoring, name=amin), "
    "auc(num_thresholds=9, curve=PR, summation_method=majoring, name=amaj)",
    "auc(thresholds=[0.2, 0.5, 0.9], name=athr), auc(thresholds=[0.25, 0.5, 0.75], name=aeven)",
    "auc(multi_label=true, name=ml), auc(multi_label=true, curve=PR, name=mlpr), "
    "auc(label_weights=[0.2, 1.0, 3.0], name=lw)",
    "auc(multi_label=true, num_labels=3, label_weights=[0.5, 1.0, 2.0], name=mlw)",
    "mse, mae, root_mean_squared_error",
]


@pytest.mark.parametrize("metrics", BINARY)
def test_binary_metrics_match_keras(tmp_path, metrics):
    y = labels("binary", 40, 3)
    expected, logs, _ = evaluate_both(tmp_path, 3, "sigmoid", "binary_crossentropy", metrics, y)
    check(expected, logs)


def test_metrics_from_logits_match_keras(tmp_path):
    y = labels("binary", 40, 1)
    metrics = "accuracy, auc(from_logits=true, name=auc_logits), precision"
    loss = "binary_crossentropy(from_logits=true)"
    expected, logs, _ = evaluate_both(tmp_path, 1, "linear", loss, metrics, y)
    check(expected, logs)


CATEGORICAL = [
    "accuracy, categorical_accuracy, top_k_categorical_accuracy(k=2), "
    "top_k_categorical_accuracy(name=top5)",
    "mse, mae, mape, root_mean_squared_error",
    "precision(top_k=1), recall(top_k=2), auc(multi_label=true, label_weights=[1, 2, 3, 4, 5])",
]


@pytest.mark.parametrize("metrics", CATEGORICAL)
def test_categorical_metrics_match_keras(tmp_path, metrics):
    y = labels("onehot", 40, 5)
    loss = "categorical_crossentropy"
    expected, logs, _ = evaluate_both(tmp_path, 5, "softmax", loss, metrics, y)
    check(expected, logs)


def test_sparse_metrics_match_keras(tmp_path):
    y = labels("ids", 40, 5)
    metrics = (
        "accuracy, sparse_categorical_accuracy, sparse_top_k_categorical_accuracy(k=2), "
        "sparse_top_k_categorical_accuracy(k=3, name=top3)"
    )
    loss = "sparse_categorical_crossentropy"
    expected, logs, _ = evaluate_both(tmp_path, 5, "softmax", loss, metrics, y)
    check(expected, logs)


def test_regression_metrics_match_keras(tmp_path):
    y = labels("real", 40, 2)
    metrics = "mse, MAE, mean_absolute_percentage_error, root_mean_squared_error"
    expected, logs, _ = evaluate_both(
        tmp_path, 2, "linear", "huber", metrics, y, "weighted_metrics = [mse, mae]"
    )
    check(expected, logs)
    assert {"weighted_mse", "mae"} <= set(logs)  # MAE is logged as written


def test_plan_format(tmp_path):
    y = labels("binary", 8, 3)
    _, _, plan = evaluate_both(
        tmp_path, 3, "sigmoid", "binary_crossentropy", "accuracy, precision, auc", y, "", 8
    )
    accuracy, precision, auc = plan
    assert accuracy == {
        "output": "output",
        "key": "accuracy",
        "direction": "up",
        "stats": {"value": "metric:output:accuracy"},
        "combine": "mean",
        "finalize": "float(value)",
    }
    assert precision["stats"] == {
        "tp": "metric:output:precision:tp",
        "fp": "metric:output:precision:fp",
    }
    assert precision["combine"] == "sum"
    assert set(auc["stats"]) == {"tp", "fp", "tn", "fn"}


def test_statistics_are_model_outputs(tmp_path):
    from transpiler.emit.onnx import initial_weights
    from transpiler.runtime.session import create_session

    graph = ktrans_graph(
        KDL.format(
            units=3,
            activation="sigmoid",
            loss="binary_crossentropy",
            metrics="accuracy, precision, auc(num_thresholds=7), auc(multi_label=true, name=m)",
            extra="",
        ),
        tmp_path,
    )
    config = graph.trains["default"]
    tm = build(graph, config, initial_weights(graph, seed=0))
    outputs = {o.name for o in tm.proto.graph.output}
    for entry in metric_plan(config):
        assert set(entry["stats"].values()) <= outputs
    assert set(tm.metrics) == {n for e in metric_plan(config) for n in e["stats"].values()}
    shapes = metric_shapes(config, graph)
    assert set(shapes) == set(tm.metrics)
    session = create_session(tm.proto)
    x = np.zeros((5, 6), np.float32)
    feed = {"x": x, "target:output": np.zeros((5, 3), np.float32), STEP_INPUT: np.array(0)}
    feed.update(tm.params, **tm.slots, **{LR_INPUT: np.array(0.0, np.float32)})
    names = [o.name for o in session.get_outputs()]
    for name, value in zip(names, session.run(None, feed)):
        if name in shapes:
            assert value.shape == shapes[name], name
    assert shapes["metric:output:precision:tp"] == (1,)
    assert shapes["metric:output:auc:fn"] == (7,)
    assert shapes["metric:output:m:tp"] == (200, 3)


MULTI = """
model Two {
    input x: float32[4]
    output a = Dense(1, activation=sigmoid)(x)
    output b = Dense(4, activation=softmax)(x)
}
"""


@pytest.mark.parametrize(
    "body",
    [
        "loss = [bce, categorical_crossentropy]\n metrics = {b: [accuracy, mae, mae]}\n"
        " weighted_metrics = {b: [mae]}",
        "loss = [bce, categorical_crossentropy]\n metrics = [[acc], [auc, Precision()]]\n"
        " weighted_metrics = [[acc], [acc]]",
    ],
)
def test_log_names_are_keras_log_keys(tmp_path, body):
    from transpiler.training import log_keys

    graph = ktrans_graph(MULTI + f"train Two {{ {body} }}", tmp_path)
    c = graph.trains["default"]
    keys = [
        k for k in log_keys(c.outputs, c.loss, c.metrics, c.weighted_metrics) if "loss" not in k
    ]
    assert [key for _, _, key, _ in log_names(c)] == keys
    assert [e["key"] for e in metric_plan(c)] == keys
    for output, _, key, suffix in log_names(c):
        assert key == f"{output}_{suffix}"
