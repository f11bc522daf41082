"""DistributedDataParallel under torchrun (gloo, CPU): two processes train as one process
on the whole batch does, and a process that dies ends the job with a clear error while
the last checkpoint stays intact for --resume.

One module-scoped bundle (Tiny, batch 128, five steps an epoch, no Dropout) and its
one-process runs serve every test; torchrun starts three times in all (each start costs
a few seconds: two Python processes importing torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.torch_train.bundles import (
    checkpoint_state,
    ktrans,
    ok,
    run,
    tiny,
    tiny_data,
    torch_bundle,
    torchrun,
    trained_weights,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow
KILL = "KTRANS_TEST_KILL_AFTER_STEPS"


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """The bundle (800 training rows, 160 held out for validation: five steps of 128),
    and one process trained for one epoch, then resumed to three."""
    tmp = tmp_path_factory.mktemp("ddp")
    text = tiny("Ddp", "RMSprop(learning_rate=0.01, momentum=0.5)", batch=128, epochs=3)
    script = torch_bundle(tmp, text)
    data = tiny_data(tmp / "data.npz", rows=800, test_rows=40)
    one = tmp / "one"
    ok(run(script, "--data", data, "--out", one, "--epochs", "1"))
    first = trained_weights(one / "Ddp.trained.pt")
    history = json.loads((one / "history.json").read_text())
    ok(run(script, "--data", data, "--out", one, "--resume", "--epochs", "3"))
    return script, data, first, history, one


def assert_same_weights(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_two_processes_at_64_rows_each_train_as_one_at_128(ddp, tmp_path):
    script, data, first, history, _ = ddp
    out = tmp_path / "two"
    result = torchrun(script, 2, "--data", data, "--out", out, "--epochs", "1")
    ok(result)
    assert_same_weights(trained_weights(out / "Ddp.trained.pt"), first)
    logged = json.loads((out / "history.json").read_text())
    assert set(logged) == set(history)
    for key, values in history.items():
        np.testing.assert_allclose(logged[key], values, rtol=1e-5, atol=1e-7, err_msg=key)
    results = json.loads((out / "results.json").read_text())
    assert results["processes"] == 2 and results["steps"] == 5
    # only rank 0 prints: one result line, no rank marks
    assert result.stdout.count("Ddp: 1 epochs, 5 steps") == 1
    assert "[rank 1]" not in result.stderr


def test_a_process_that_dies_ends_the_job_and_resume_continues(ddp, tmp_path):
    """`ktrans train --nproc 2` with rank 1 killed (SIGKILL) in epoch 2: the job ends
    with ktrans's one line naming the process and the checkpoint, without torchrun's
    traceback or failure report; `--resume` then finishes as the uninterrupted run."""
    script, data, _, _, one = ddp
    kdl = script.parent.parent / "bundle.kdl"  # the .kdl the bundle was written from
    out = tmp_path / "killed"
    flags = ["--data", data, "--engine", "torch", "--nproc", "2", "--out", out]
    killed = ktrans("train", kdl, *flags, env={KILL: "1:8"})
    assert killed.returncode == 1, killed.stderr[-3000:]
    last = killed.stderr.strip().splitlines()[-1]
    checkpoint = (out / "checkpoint.npz").resolve()  # the script's --out, resolved
    assert last == (
        f"error: process 1 of 2 was killed by SIGKILL; the last checkpoint ({checkpoint}) "
        "is intact: continue with --resume"
    )
    for noise in ("Traceback", "ChildFailedError", "Root Cause", "exitcode"):
        assert noise not in killed.stderr + killed.stdout, noise
    with np.load(out / "checkpoint.npz") as archive:
        meta = json.loads(str(archive["meta"]))
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 0, 5)  # after epoch 1
    resumed = ktrans("train", kdl, *flags, "--resume")
    ok(resumed)
    assert "resuming at epoch 2, batch 0 (step 5)" in resumed.stderr
    assert_same_weights(
        trained_weights(out / "Ddp.trained.pt"), trained_weights(one / "Ddp.trained.pt")
    )
    ours, theirs = (
        checkpoint_state(out / "checkpoint.npz"),
        checkpoint_state(one / "checkpoint.npz"),
    )
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)


CONV = """
model Conv {
    input x: float32[8, 8, 1]
    Conv2D(4, 3, activation=relu)
    Flatten()
    Dense(3, activation=softmax)
}
train Conv {
    loss = categorical_crossentropy
    optimizer = sgd
    batch_size = 32
    epochs = 1
}
"""


def test_a_channels_last_cnn_trains_in_two_processes_without_stride_warnings(tmp_path):
    """The module's permute to channels-first is a contiguous copy: a permuted view made
    the convolutions' weight gradients channels_last, and DDP warned on every run
    ("Grad strides do not match bucket view strides")."""
    script = torch_bundle(tmp_path, CONV, "conv")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "conv.npz", x_train=x, y_train=rng.integers(0, 3, size=64))
    result = torchrun(script, 2, "--data", tmp_path / "conv.npz", "--out", tmp_path / "run")
    ok(result)
    assert "Grad strides" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr[-3000:]
