"""The budgets of transpiler/limits.py, in process (the capped table in
test_hostile_inputs.py runs the extreme cases): each is an error at the right place, and
what stays within them works and means what it did."""

from __future__ import annotations

import numpy as np
import pytest

from transpiler.errors import KdlError, KdlErrors, Span
from transpiler.graph import load
from transpiler.limits import MAX_ERRORS_SHOWN, MAX_INT_MAGNITUDE

MODEL = "model M {{\n    input x: float32[4]\n{body}\n}}\n"


def _load(tmp_path, text: str):
    path = tmp_path / "m.kdl"
    path.write_text(text)
    return load(str(path))


def _error(tmp_path, text: str) -> KdlError:
    with pytest.raises(KdlErrors) as info:
        _load(tmp_path, text)
    return info.value.errors[0]


def _const(tmp_path, expression: str):
    _, graphs = _load(tmp_path, f"const c = {expression}\n" + MODEL.format(body="    Dense(c)"))
    return graphs["M"].outputs["output"].type.shape[-1]


def test_long_chains_keep_their_meaning(tmp_path):
    assert _const(tmp_path, "100 - 50 - 20 - 10") == 20  # left to right
    assert _const(tmp_path, "2 ** 3 ** 2 / 64") == 8  # ** binds to the right: 2 ** 9
    assert _const(tmp_path, "1" + " + 1" * 999) == 1000
    text = "const t = " + " and ".join(["true"] * 999) + " and false\n"
    text += MODEL.format(body="    if t { Dense(3) } else { Dense(5) }")
    _, graphs = _load(tmp_path, text)
    assert graphs["M"].outputs["output"].type.shape[-1] == 5


def test_integers_stop_at_int64(tmp_path):
    assert _const(tmp_path, f"{MAX_INT_MAGNITUDE} - {MAX_INT_MAGNITUDE - 7}") == 7
    error = _error(tmp_path, f"const c = {MAX_INT_MAGNITUDE} + 1\n" + MODEL.format(body=""))
    assert "too large" in error.message and (error.span.line, error.span.column) == (1, 11)
    error = _error(tmp_path, f"const c = {MAX_INT_MAGNITUDE + 1}\n" + MODEL.format(body=""))
    assert "too large" in error.message
    error = _error(tmp_path, "const c = 2 ** 64\n" + MODEL.format(body=""))
    assert "too large" in error.message
    error = _error(tmp_path, "const c = 1e999\n" + MODEL.format(body=""))
    assert "too large for a float" in error.message
    error = _error(tmp_path, "const c = (-8) ** 0.5\n" + MODEL.format(body=""))
    assert "not a real number" in error.message


def test_nested_repeats_multiply_through_blocks(tmp_path):
    text = "block B() {\n    input x\n    repeat 200 { Dense(2) }\n}\n"
    text += MODEL.format(body="    repeat 100 { B() }")
    error = _error(tmp_path, text)
    assert "runs 20,000 times" in error.message and "(100 x 200)" in error.message
    assert (error.span.line, error.span.column) == (3, 12)


def test_a_repeat_product_at_the_limit_is_fine(tmp_path):
    body = "    repeat 100 { repeat 100 { Activation(relu) } }"
    _, graphs = _load(tmp_path, MODEL.format(body=body))
    assert len(graphs["M"].layers) == 10_000


def test_the_report_shows_the_first_errors_and_counts_the_rest():
    errors = KdlErrors([KdlError(Span("m.kdl", i, 1), f"problem {i}") for i in range(1, 151)])
    text = errors.render({"m.kdl": "x\n" * 150})
    assert text.count("error: problem") == MAX_ERRORS_SHOWN
    assert "m.kdl:100:1: error: problem 100" in text and "problem 101" not in text
    assert text.endswith("... and 50 more errors\n150 errors")


def test_no_source_line_from_a_file_that_is_not_kdl(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    rendered = KdlErrors([KdlError(Span(str(secret), 1, 1), "bad")]).render()
    assert "TOP SECRET" not in rendered
    kdl = tmp_path / "m.kdl"
    kdl.write_text("model M {\n")
    assert "model M {" in KdlErrors([KdlError(Span(str(kdl), 1, 1), "bad")]).render()


def test_control_characters_are_escaped_and_the_caret_still_points(tmp_path):
    text = 'model M {\n    input x: float32[4]\n    Dense(2, name="\x1b[2J")  Dense(0)\n}\n'
    path = tmp_path / "m.kdl"
    path.write_text(text)
    with pytest.raises(KdlErrors) as info:
        load(str(path))
    rendered = info.value.render()  # the bad name, then Dense(0) after it on the line
    assert "\x1b" not in rendered and '"\\x1b[2J"' in rendered
    line = next(ln for ln in rendered.splitlines() if ln.startswith(" 3 | "))
    caret = [ln for ln in rendered.splitlines() if ln.strip().startswith("| ") and "^" in ln][-1]
    assert caret.index("^") == line.index("0)")  # past the escaped \x1b, still under the 0


def test_npz_text_members_only_where_allowed(tmp_path):
    from transpiler.emit.onnx.npz_reading import read_npz

    path = tmp_path / "c.npz"
    np.savez(path, meta=np.array('{"model": "M"}'), w=np.ones(3, np.float32))
    seen = {}
    arrays = read_npz(path, "--weights", seen.update, text=("meta",))
    assert seen == {"meta": (), "w": (3,)} and str(arrays["meta"]) == '{"model": "M"}'
    with pytest.raises(KdlErrors, match="'meta' holds <U14 values, not numbers"):
        read_npz(path, "--weights", seen.update)
