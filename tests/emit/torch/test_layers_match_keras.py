"""Every catalogue layer, with every argument combination its ONNX lowering is tested
with: the generated torch.nn.Module's outputs equal Keras 3's on the same weights (1e-5,
relative), in inference mode.

The lowering tests (tests/emit/test_lower_*.py) build each case as a .kdl text and a
Keras model and hand both to tests/emit/parity.py's `compare`; here the same test
functions run, with their own parameter tables, against `compare_torch` instead (which
generates the module, loads the Keras model's weights through load_keras_weights, and
compares). The functions listed are those whose point is a computation (a few also count
ONNX ops on the way, which still hold); the ones that only count ops or run onnx's
second runtime are left to the ONNX suite, the examples to test_examples_match_keras.py.
"""

from __future__ import annotations

import importlib
import inspect
import itertools

import pytest

from tests.emit.torch.harness import compare_torch

pytest.importorskip("keras")
pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

REUSED = {
    "test_lower_activation_layers": [
        "test_relu",
        "test_leaky_relu",
        "test_elu",
        "test_softmax",
        "test_prelu",
        "test_after_conv_stay_nchw",
        "test_prelu_channels_first",
    ],
    "test_lower_attention": [
        "test_multi_head_attention",
        "test_dynamic_lengths",
        "test_dynamic_sliding_window",
    ],
    "test_lower_conv": [
        "test_conv_layers_match_keras",
        "test_conv_stack_runs_channels_first_between_two_transposes",
        "test_dynamic_length_conv_with_stride_pads_at_run_time",
    ],
    "test_lower_core": [
        "test_dense_activations",
        "test_dense_rank3_and_dropout",
        "test_embedding",
        "test_shared_dense",
        "test_expressions",
    ],
    "test_lower_merging": [
        "test_two_inputs",
        "test_three_inputs_broadcast",
        "test_different_ranks",
        "test_concatenate",
        "test_dot",
        "test_cnn_merges_keep_the_stored_layout",
        "test_mixed_layouts",
    ],
    "test_lower_normalization": [
        "test_batch_normalization",
        "test_batch_normalization_after_conv_is_onnx_batchnorm",
        "test_batch_normalization_channels_first",
        "test_batch_normalization_on_a_time_major_sequence",
        "test_layer_normalization",
        "test_layer_normalization_middle_axis",
        "test_layer_normalization_on_nchw_storage",
        "test_group_normalization",
        "test_group_normalization_after_conv",
        "test_group_normalization_channels_first",
    ],
    "test_lower_pooling": [
        "test_pooling_layers_match_keras",
        "test_dynamic_length_pooling_pads_at_run_time",
    ],
    "test_lower_recurrent": [
        "test_recurrent",
        "test_unrolled",
        "test_dynamic_time_axis",
        "test_initial_and_returned_states",
        "test_stacked_sequences_stay_time_major",
        "test_bidirectional",
        "test_bidirectional_unmerged",
        "test_bidirectional_states_and_backward_layer",
        "test_bidirectional_dynamic_time_axis",
        "test_time_distributed_dense",
        "test_time_distributed_conv2d",
        "test_time_distributed_lstm",
        "test_between_convolutions",
    ],
    "test_lower_reshaping": ["test_reshaping_layers_match_keras"],
    "test_lower_preprocessing": [
        "test_rescaling",
        "test_rescaling_casts_the_input",
        "test_rescaling_per_channel_after_conv_stays_nchw",
        "test_normalization_adapted",
        "test_normalization_given_statistics",
        "test_normalization_casts_the_input",
        "test_normalization_after_conv_and_reference_evaluator",
        "test_layer_scale_and_custom_scale_layer",
    ],
    "test_call_keywords": [
        "test_recurrent_initial_state_keywords_match_keras",
        "test_attention_masks_match_keras",
        "test_attention_mask_with_a_row_that_attends_to_nothing",
        "test_attention_mask_combines_with_keras_masks",
        "test_explicit_masks_match_keras",
    ],
    "test_merge_helpers": ["test_outputs_and_masks_match_keras"],
    "test_lower_masking": [
        "test_masked_layers_match_keras",
        "test_dynamic_time_axis",
        "test_returned_states",
        "test_initial_states_leave_the_mask_unused",
    ],
}


def _values(mark) -> tuple[list[str], list]:
    names, values = mark.args[0], mark.args[1]
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    rows = []
    for value in values:
        if hasattr(value, "values") and hasattr(value, "marks"):  # pytest.param
            value = value.values if len(names) > 1 else value.values[0]
        rows.append(tuple(value) if len(names) > 1 else (value,))
    return names, rows


def cases():
    """(module, function, keyword arguments) for every parameter row of every function."""
    out = []
    for module_name, functions in REUSED.items():
        module = importlib.import_module(f"tests.emit.{module_name}")
        for name in functions:
            fn = getattr(module, name)
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            tables = [_values(m) for m in marks]
            for k, combo in enumerate(itertools.product(*(rows for _, rows in tables))):
                kwargs = {}
                for (names, _), row in zip(tables, combo):
                    kwargs.update(zip(names, row))
                out.append(pytest.param(module_name, name, kwargs, id=f"{name[5:]}-{k}"))
    return out


@pytest.fixture
def torch_compare(monkeypatch):
    """`compare` in every lowering test module (and parity.py) is compare_torch."""
    import tests.emit.parity as parity

    monkeypatch.setattr(parity, "compare", compare_torch)
    for module_name in REUSED:
        module = importlib.import_module(f"tests.emit.{module_name}")
        if hasattr(module, "compare"):
            monkeypatch.setattr(module, "compare", compare_torch)


@pytest.mark.parametrize(("module_name", "function", "kwargs"), cases())
def test_layer_matches_keras(tmp_path, torch_compare, module_name, function, kwargs):
    module = importlib.import_module(f"tests.emit.{module_name}")
    fn = getattr(module, function)
    if "tmp_path" in inspect.signature(fn).parameters:
        kwargs = {"tmp_path": tmp_path, **kwargs}
    fn(**kwargs)
