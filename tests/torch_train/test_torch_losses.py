"""Every loss of the catalogue in the torch engine's runtime (torch_losses) against
Keras 3's train_on_batch: the logged loss of each step and the weights after three SGD
steps (so the gradient of the loss is checked too); then regularizers and loss weights."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.test_losses import CASES, KDL, keras_mlp, targets
from tests.torch_train.oracle import assert_every_step, dense_stack, train_both

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")


@pytest.mark.parametrize(("loss", "units", "activation", "kind"), CASES)
def test_loss_matches_keras(tmp_path, loss, units, activation, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = targets(kind, 16, units, rng)
    kdl = KDL.format(units=units, activation=activation, loss=loss)
    module = dense_stack([6, 8, units], ["tanh", activation])
    run = train_both(kdl, tmp_path, keras_mlp(units, activation), module, x, y, steps=3)
    for ours, log in zip(run.losses, run.keras_logs):
        np.testing.assert_allclose(ours, log["loss"], rtol=2e-6, atol=1e-7)
    assert_every_step(run)
