"""Every optimizer of the catalogue, and the options every optimizer shares, in the
torch engine's runtime (torch_optim) against Keras 3's train_on_batch: the weights after
each of three steps (four with accumulation over two), the slots, the losses."""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.train.test_optimizers import COMMON, MLP, OPTIMIZERS, batch, keras_mlp
from tests.torch_train.oracle import assert_every_step, dense_stack, train_both

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("optimizer", OPTIMIZERS + COMMON)
def test_optimizer_matches_keras(tmp_path, optimizer):
    x, y = batch()
    steps = 4 if "gradient_accumulation_steps" in optimizer else 3
    module = dense_stack([6, 8, 4], ["tanh", "softmax"])
    run = train_both(MLP.format(optimizer=optimizer), tmp_path, keras_mlp, module, x, y, steps)
    assert_every_step(run)
    assert_slots(run)


def assert_slots(run):
    """Every slot equals the Keras optimizer variable it stands for (in torch layout
    here: a Dense kernel's slots are transposed)."""
    opt = run.km.optimizer
    theirs = {v.name: np.asarray(v.numpy()) for v in opt.variables}
    ours = run.optimizer.state()
    ours_layers = [layer.name for layer in run.graph.layers if layer.weights]
    theirs_layers = [layer for layer in run.km.layers if layer.weights]
    checked = 0
    for mine, layer in zip(ours_layers, theirs_layers, strict=True):
        for variable in layer.weights:
            prefix = variable.path.replace("/", "_") + "_"
            key = f"{mine}/{variable.name}"
            for name, value in theirs.items():
                if not name.startswith(prefix):
                    continue
                slot = f"slot:{key}:{name[len(prefix) :]}"
                assert slot in ours, (slot, sorted(ours))
                got = ours[slot].detach().numpy()
                got = got.T if variable.name == "kernel" else got
                np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-6, err_msg=slot)
                checked += 1
    if hasattr(opt, "_u_product"):
        u = ours["slot:optimizer:u_product"].numpy()
        np.testing.assert_allclose(u, opt._u_product.numpy(), rtol=1e-6)
    assert checked == len([s for s in ours if not s.startswith("slot:optimizer:")])
