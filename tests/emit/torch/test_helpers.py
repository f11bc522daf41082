"""templates/torch_layers on its own: the recurrent layers' fused path (torch's LSTM, GRU
and RNN kernels on the Keras-layout weights) computes what their Keras loop computes,
outputs, final states and gradients alike."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from transpiler.templates.torch_layers import recurrent  # noqa: E402

LAYERS = [
    ("LSTM", {}),
    ("LSTM", {"go_backwards": True, "return_sequences": True}),
    ("LSTM", {"use_bias": False}),
    ("GRU", {}),
    ("GRU", {"go_backwards": True, "return_sequences": True}),
    ("GRU", {"use_bias": False}),
    ("SimpleRNN", {}),
    ("SimpleRNN", {"activation": torch.relu, "go_backwards": True}),
]


@pytest.mark.parametrize(("name", "kwargs"), LAYERS, ids=[f"{n}{k}" for n, k in LAYERS])
def test_fused_kernel_equals_the_loop(name, kwargs):
    torch.manual_seed(0)
    layer = getattr(recurrent, name)(3, 4, return_state=True, **kwargs)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.normal_()
    assert layer.fused() is not None
    x = torch.randn(2, 5, 3)
    states = [torch.randn(2, 4) for _ in range(layer.states)]
    everything = torch.ones(2, 5, dtype=torch.bool)  # a mask keeping every step: the loop
    results = []
    for mask in (None, everything):
        layer.zero_grad()
        y, *finals = layer(x, mask, states)
        (y.square().sum() + sum(f.sum() for f in finals)).backward()
        grads = [p.grad.clone() for p in layer.parameters()]
        results.append((y, finals, grads))
    (y1, f1, g1), (y2, f2, g2) = results
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    for a, b in zip(f1 + g1, f2 + g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_activations_and_reset_before_keep_the_loop():
    assert recurrent.LSTM(3, 4, activation=torch.relu).fused() is None
    assert recurrent.GRU(3, 4, reset_after=False).fused() is None
    assert recurrent.SimpleRNN(3, 4, activation=torch.sigmoid).fused() is None
