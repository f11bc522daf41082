"""ktrans_runtime.metrics / finalize (Keras's metric state, against ktrans's reference
evaluate_plan), checkpoint (round trip, damage found before anything is read), progress
and history."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from transpiler.emit.train.metrics import evaluate_plan
from transpiler.templates.ktrans_runtime import checkpoint, finalize
from transpiler.templates.ktrans_runtime.history import write_history
from transpiler.templates.ktrans_runtime.metrics import Averages
from transpiler.templates.ktrans_runtime.progress import Progress, format_logs

PLAN = [
    {"key": "mae", "stats": {"value": "metric:o:mae"}, "combine": "mean",
     "finalize": "float(value)"},
    {"key": "p3", "stats": {"tp": "metric:o:p3:tp", "fp": "metric:o:p3:fp"}, "combine": "sum",
     "finalize": "first_or_list(divide_no_nan(tp, tp + fp))"},
    {"key": "auc", "stats": {s: f"metric:o:auc:{s}" for s in ("tp", "fp", "tn", "fn")},
     "combine": "sum",
     "finalize": "auc_result(tp, fp, tn, fn, curve='PR', summation_method='interpolation', "
                 "multi_label=False, label_weights=None)"},
]  # fmt: skip


def batches(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(
            {
                "ktrans:loss": float(rng.random()),
                "metric:o:mae": float(rng.random()),
                "metric:o:p3:tp": rng.integers(0, 9, 3).astype(np.float32),
                "metric:o:p3:fp": rng.integers(0, 9, 3).astype(np.float32),
                **{
                    f"metric:o:auc:{s}": rng.integers(0, 20, 7).astype(np.float32)
                    for s in ("tp", "fp", "tn", "fn")
                },
            }
        )
    return out


def test_averages_equal_the_reference_plan_evaluation():
    values, sizes = batches(4), [16, 16, 16, 5]
    averages = Averages({"loss": "ktrans:loss"}, PLAN)
    for v, n in zip(values, sizes):
        averages.update(v, n)
    logs = averages.result()
    reference = evaluate_plan(PLAN, values, sizes)
    assert {k: v for k, v in logs.items() if k != "loss"} == reference
    expected_loss = sum(v["ktrans:loss"] * n for v, n in zip(values, sizes)) / sum(sizes)
    assert logs["loss"] == pytest.approx(expected_loss, rel=1e-12)
    assert isinstance(logs["p3"], list) and len(logs["p3"]) == 3


def test_averages_resume_from_their_state_exactly():
    values = batches(5, seed=1)
    whole = Averages({"loss": "ktrans:loss"}, PLAN)
    for v in values:
        whole.update(v, 8)
    first = Averages({"loss": "ktrans:loss"}, PLAN)
    for v in values[:2]:
        first.update(v, 8)
    saved = json.loads(json.dumps(first.state()))  # as a checkpoint holds it
    second = Averages({"loss": "ktrans:loss"}, PLAN)
    second.load(saved)
    for v in values[2:]:
        second.update(v, 8)
    assert second.result() == whole.result()
    with pytest.raises(ValueError, match="not this model's"):
        Averages({"loss": "other"}, PLAN).load(saved)


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('x')", "open('f')", "value.__class__", "np._x(value)",
     "[v for v in value]", "f(**value)", "lambda: 1", "value if value else 0"],
)  # fmt: skip
def test_finalize_expressions_outside_the_catalogue_are_refused(expression):
    with pytest.raises(finalize.FinalizeError, match="not one ktrans writes"):
        finalize.compile_finalize(expression, ["value"])
    with pytest.raises(finalize.FinalizeError):
        Averages({}, [{"key": "k", "stats": {"value": "v"}, "combine": "mean",
                       "finalize": expression}])  # fmt: skip


# ------------------------------------------------------------------ checkpoint

SHAPES = {"w": (2, 3), "b": (3,)}
META = {
    "model": "M", "train_block": "default", "fingerprint": "f", "engine": "x",
    "settings": {"seed": 0, "batch_size": 4, "validation_split": 0.0, "epochs": 2},
    "epoch": 1, "batch": 0, "step": 3, "lr": 0.1, "stop": False, "finished": False,
    "history": [], "averages": {}, "callbacks": [],
}  # fmt: skip


def state():
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, META, state(), {"callback0/w": np.zeros((2, 3), np.float32)})
    meta, loaded, extra = checkpoint.load(path, "M", SHAPES)
    assert meta["format"] == checkpoint.FORMAT and meta["step"] == 3
    assert {k: v.tolist() for k, v in loaded.items()} == {k: v.tolist() for k, v in state().items()}
    assert list(extra) == ["callback0/w"]


def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _good() -> dict:
    return {"meta": np.array(json.dumps({"format": checkpoint.FORMAT, **META})),
            **{f"state/{k}": v for k, v in state().items()}}  # fmt: skip


DAMAGE = {
    "empty": (b"", "not a readable .npz archive"),
    "random": (np.random.default_rng(0).bytes(1000), "not a readable .npz archive"),
    "truncated": (_npz(_good())[:300], "not a readable .npz archive"),
    "no meta": (_npz({"state/w": state()["w"], "state/b": state()["b"]}), "no 'meta'"),
    "meta not a string": (_npz({**_good(), "meta": np.zeros(3)}), "not a JSON string"),
    "meta not JSON": (_npz({**_good(), "meta": np.array("{x")}), "not valid JSON"),
    "meta lacks a key": (
        _npz({**_good(), "meta": np.array(json.dumps({"format": 3, "model": "M"}))}),
        "has no 'train_block'",
    ),
    "meta wrong type": (
        _npz({**_good(), "meta": np.array(json.dumps({**META, "format": 3, "step": "3"}))}),
        "'step' is not what a checkpoint holds",
    ),
    "wrong shape": (_npz({**_good(), "state/w": np.zeros((3, 3), np.float32)}), "shaped (3, 3)"),
    "foreign entry": (_npz({**_good(), "state/z": np.zeros(3, np.float32)}), "not part of"),
    "missing entry": (_npz({k: v for k, v in _good().items() if k != "state/b"}), "missing"),
    "object array": (_npz({**_good(), "x": np.array([{}], dtype=object)}), "not float32"),
    "float64": (_npz({**_good(), "state/b": np.ones(3)}), "not float32"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_checkpoints_are_named_so(tmp_path, kind):
    raw, fragment = DAMAGE[kind]
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(raw)
    with pytest.raises(checkpoint.DamagedCheckpoint) as e:
        checkpoint.load(path, "M", SHAPES)
    message = str(e.value)
    assert f"the checkpoint {path} is damaged" in message and fragment in message
    assert "Start over without --resume" in message


def test_other_models_and_formats_are_refused_with_what_to_do(tmp_path):
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(Exception, match="there is no checkpoint"):
        checkpoint.load(path, "M", SHAPES)
    checkpoint.save(path, META, state())
    with pytest.raises(Exception, match="is a checkpoint of M, not of N"):
        checkpoint.load(path, "N", SHAPES)
    path.write_bytes(_npz({**_good(), "meta": np.array(json.dumps({**META, "format": 2}))}))
    with pytest.raises(Exception, match="another version of this script"):
        checkpoint.load(path, "M", SHAPES)


# ------------------------------------------------------------------ progress, history


def test_progress_lines_are_keras_style_and_escaped():
    stream = io.StringIO()
    progress = Progress(2, stream)  # not a terminal: one line per epoch
    progress.start(0, 3, 10, 0)
    progress.end({"loss": 0.25, "acc\x1b[2J": 0.5, "p": [0.5, 0.00012]})
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Epoch 1/3"
    assert lines[1].startswith("10/10 - ") and "\x1b" not in lines[1]
    assert lines[1].endswith(" - acc\\x1b[2J: 0.5000 - loss: 0.2500 - p: [0.5000, 1.2000e-04]")
    assert format_logs({}) == ""


def test_history_json_and_csv(tmp_path):
    history = [
        {"epoch": 0, "loss": 0.5, "p": [0.1, 0.2], "learning_rate": 0.1, 'a,"b': 1.0},
        {"epoch": 1, "loss": 0.25, "p": [0.3, 0.4], "learning_rate": 0.05, 'a,"b': 2.0},
    ]
    write_history(tmp_path, history)
    columns = json.loads((tmp_path / "history.json").read_text())
    assert columns["epoch"] == [0, 1] and columns["p"] == [[0.1, 0.2], [0.3, 0.4]]
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == 'epoch,"a,""b",learning_rate,loss,p[0],p[1]'
    assert lines[2] == "1,2.0,0.05,0.25,0.3,0.4"
