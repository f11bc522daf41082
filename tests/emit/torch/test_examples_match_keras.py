"""Every example in examples/*.kdl: the torch.nn.Module `codegen --target torch` writes
computes what Keras computes, on the same weights.

The Keras model is the one `codegen --target keras` writes for the same file (so layer
names agree, and weights pair by name); its weights are random but keep a deep
network's activations in range (tests/emit/test_lower_examples.py's `randomize`); the
module loads them through its own load_keras_weights. ResNet50 and MobileNetV2 run at a
batch of one and two; `?` axes (lstm_seq2seq's sentences) at 9 steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.emit.torch.harness import compare_with_keras_target
from tests.test_examples import EXAMPLES as ROOT

keras = pytest.importorskip("keras")
pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

BATCH = {"resnet50": 1, "mobilenet_v2": 2, "tweet_pair": 2}
SLOW = {"resnet50", "mobilenet_v2", "tweet_pair"}  # 160 layers; 280 LSTM steps
#: every example there is (a new one is covered without editing this file)
EXAMPLES = sorted(p.stem for p in ROOT.glob("*.kdl"))
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in EXAMPLES]


@pytest.mark.parametrize("name", PARAMS)
def test_example_matches_keras(name):
    from tests.emit.test_lower_examples import randomize
    from tests.test_examples import kdl

    program, graph = kdl(name)
    source = str(ROOT / f"{name}.kdl")
    _, theirs = compare_with_keras_target(
        program, graph, source, randomize, batch=BATCH.get(name, 3)
    )
    assert all(np.std(t) > 1e-4 for t in theirs), "the random weights give a constant output"


def test_every_example_is_covered():
    assert len(EXAMPLES) >= 11 and {"lstm_seq2seq", "digits_cnn", "wine_mlp"} <= set(EXAMPLES)
