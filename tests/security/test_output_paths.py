"""Every path a .kdl file names for training to write stays inside --out (issue 9,
section 2): each hostile variant is a `check` error at the path's line and column, for
CSVLogger's filename and ModelCheckpoint's filepath alike."""

from __future__ import annotations

import pytest

from transpiler.errors import KdlErrors
from transpiler.graph import load

TEXT = """model M {{
    input x: float32[4]
    Dense(2)
}}
train M {{
    loss = mse
    callbacks = [{callback}]
}}
"""
CALLBACKS = {  # where the quoted path starts on line 7
    "CSVLogger": ('CSVLogger(filename="{path}")', 37),
    "ModelCheckpoint": ('ModelCheckpoint(filepath="{path}.keras")', 43),
}
REFUSED = [
    ("/etc/cron.d/x", "is an absolute path"),
    ("/", "is an absolute path"),
    ("C:x", "is an absolute path"),
    ("../x", 'goes up with ".."'),
    ("a/../../x", 'goes up with ".."'),
    ("../..", 'goes up with ".."'),
    ("a\\\\..\\\\x", "holds a backslash"),
    ("a\\x00b", "holds the control character '\\x00'"),
    ("a\\nb", "holds the control character '\\n'"),
    ("a\\rb", "holds the control character '\\r'"),
    ("a\\x1b[2Jb", "holds the control character '\\x1b'"),
    ("a\\tb", "holds the control character '\\t'"),
    ("a\\u202eb", "holds the control character '\\u202e'"),
    ("a\\x85b", "holds the control character '\\x85'"),
    ("x" * 300, "has a name of 30"),
    ("/".join(["d" * 200] * 6), "bytes long; the limit is 1,024"),
    ("ktrans_runtime/x", "would overwrite the code of the training bundle"),
]
ACCEPTED = ["history", "logs/run_1/history", "./x", "a b", "naïve", "..x", "x" * 240]


def _load(tmp_path, callback: str):
    path = tmp_path / "m.kdl"
    path.write_text(TEXT.format(callback=callback))
    return load(str(path))


@pytest.mark.parametrize("kind", CALLBACKS)
@pytest.mark.parametrize(("path", "says"), REFUSED)
def test_refused_at_its_line_and_column(tmp_path, kind, path, says):
    template, column = CALLBACKS[kind]
    with pytest.raises(KdlErrors) as info:
        _load(tmp_path, template.format(path=path))
    (error,) = info.value.errors
    assert says in error.message
    assert (error.span.line, error.span.column) == (7, column)
    assert "\x1b" not in info.value.render() and "\x00" not in info.value.render()


@pytest.mark.parametrize("kind", CALLBACKS)
@pytest.mark.parametrize("path", ACCEPTED)
def test_paths_inside_the_output_folder_pass(tmp_path, kind, path):
    template, _ = CALLBACKS[kind]
    _, graphs = _load(tmp_path, template.format(path=path))
    (callback,) = graphs["M"].trains["default"].callbacks
    assert next(iter(callback.kwargs.values())).startswith(path)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("ckpt_{epoch.__class__}", "a field is a plain name"),
        ("ckpt_{loss[0]}", "a field is a plain name"),
        ("ckpt_{epoch:0200d}", "wider than 64 characters"),
        ("ckpt_{epoch!a}", "with a conversion"),
        ("ckpt_{epoch", "is not a valid pattern"),
    ],
)
def test_checkpoint_patterns_fill_in_only_plain_fields(tmp_path, pattern, says):
    with pytest.raises(KdlErrors) as info:
        _load(tmp_path, f'ModelCheckpoint(filepath="{pattern}.keras")')
    assert says in info.value.errors[0].message


def test_csv_separator_is_one_character(tmp_path):
    with pytest.raises(KdlErrors) as info:
        _load(tmp_path, 'CSVLogger("h.csv", separator=", ")')
    assert "expected one character" in info.value.errors[0].message
    _, graphs = _load(tmp_path, 'CSVLogger("h.csv", separator="\\t")')
    assert graphs["M"].trains["default"].callbacks[0].kwargs["separator"] == "\t"
