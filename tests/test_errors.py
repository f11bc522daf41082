"""Broken inputs: each gives the expected message at the expected line:column, and only
KdlErrors ever escapes. Each row: (id, source, line, column, message fragment, hint
fragment or None)."""

from __future__ import annotations

import pytest

from transpiler.errors import KdlErrors
from transpiler.graph import load

MLP = "model M {\n    input x: float32[8]\n%s\n}\n"
TWO = "model M {\n    input a: float32[8]\n    input b: float32[4]\n%s\n}\n"
IMG = "model M {\n    input img: float32[28, 28, 1]\n%s\n}\n"
SEQ = "model M {\n    input s: float32[10, 8]\n%s\n}\n"
TOK = "model M {\n    input t: int64[?]\n%s\n}\n"

CASES = [
    # ---- syntax
    (
        "unclosed-brace",
        "model M {\n    input x: float32[8]\n    Dense(3)\n",
        3,
        13,
        "unexpected end of file",
        "not closed",
    ),
    (
        "unclosed-paren",
        MLP % "    Dense(3, activation=relu\n    Dense(2)",
        4,
        5,
        "unexpected name 'Dense'",
        None,
    ),
    (
        "missing-comma",
        MLP % "    Dense(3 activation=relu)",
        3,
        13,
        "unexpected name 'activation'",
        None,
    ),
    (
        "block-input-inside-repeat",
        "block B() {\n    input x\n    repeat 2 {\n        input y\n    }\n    Dense(2)\n}\n"
        + MLP % "    B()",
        4,
        15,
        "block input 'y' has no tensor left to take",
        "outside repeat and if",
    ),
    ("semicolon", MLP % "    Dense(3);", 3, 13, "unexpected character ';'", "no ';'"),
    (
        "line-begins-with-paren",
        MLP % "    h = Dense(4)(x)\n    (h * 2.0) |> Dense(2)",
        4,
        5,
        "this '(' begins a line, so it calls the value before it on line 3",
        "assign it",
    ),
    (
        "line-begins-with-bracket",
        SEQ % "    h = Dense(4)(s)  // a comment (or two)\n    [h, h] |> Concatenate()",
        4,
        5,
        "this '[' begins a line, so it indexes the value before it on line 3",
        "on the line before",
    ),
    ("single-pipe", MLP % "    y = x | Dense(3)", 3, 11, "unexpected character '|'", "'|>'"),
    (
        "double-equals",
        MLP % "    y == x",
        3,
        5,
        "a comparison on its own does nothing",
        "name = value",
    ),
    ("unterminated-string", 'import "blocks.kdl\nmodel M {}\n', 1, 8, "unterminated string", None),
    ("stray-token-top", "Dense(3)\n", 1, 1, "unexpected name 'Dense'", "a file holds"),
    (
        "model-without-brace",
        "model M\n    input x: float32[8]\n",
        2,
        5,
        "unexpected 'input'",
        "starts with '{'",
    ),
    ("bad-character", MLP % "    y = x $ 2", 3, 11, "unexpected character '$'", None),
    ("empty-call-arg", MLP % "    Dense(3,,)", 3, 13, "unexpected ','", None),
    ("kwarg-in-list", MLP % "    y = [a=1]", 3, 11, "unexpected '='", None),
    (
        "positional-after-keyword",
        MLP % "    Dense(activation=relu, 3)",
        3,
        28,
        "positional argument follows a keyword",
        None,
    ),
    (
        "duplicate-keyword",
        MLP % "    Dense(3, use_bias=true, use_bias=false)",
        3,
        29,
        "given twice",
        None,
    ),
    (
        "input-type-missing-bracket",
        "model M {\n    input x: float32\n    Dense(3)\n}\n",
        3,
        5,
        "unexpected name 'Dense'",
        None,
    ),
    ("unicode-name", MLP % "    ÿ = x", 3, 5, "unexpected character 'ÿ'", "ASCII"),
    # ---- names
    ("unknown-layer", MLP % "    Dens(3)", 3, 5, "unknown layer 'Dens'", "did you mean 'Dense'?"),
    (
        "unknown-layer-pipe",
        MLP % "    y = x |> Dnse(3)\n    output y",
        3,
        14,
        "unknown layer 'Dnse'",
        "did you mean 'Dense'?",
    ),
    ("unknown-layer-call", MLP % "    y = Dnse(3)(x)", 3, 9, "unknown layer 'Dnse'", "Dense"),
    (
        "unknown-tensor",
        MLP % "    y = Dense(3)(xx)",
        3,
        18,
        "unknown name 'xx'",
        "did you mean 'x'?",
    ),
    (
        "unknown-argument",
        MLP % "    Dense(3, activaton=relu)",
        3,
        14,
        "Dense has no argument 'activaton'",
        "did you mean 'activation'?",
    ),
    (
        "unknown-activation",
        MLP % "    Dense(3, activation=rleu)",
        3,
        25,
        "Dense: activation 'rleu' is unknown",
        "did you mean 'relu'?",
    ),
    (
        "unknown-initializer",
        MLP % "    Dense(3, kernel_initializer=he_norml)",
        3,
        33,
        "unknown initializer 'he_norml'",
        "did you mean 'he_normal'?",
    ),
    (
        "unknown-regularizer",
        MLP % "    Dense(3, kernel_regularizer=l3(0.1))",
        3,
        33,
        "unknown regularizer 'l3'",
        None,
    ),
    (
        "unknown-function",
        MLP % "    y = sigmod(x)",
        3,
        9,
        "unknown function or layer 'sigmod'",
        "did you mean 'sigmoid'?",
    ),
    (
        "unknown-dtype",
        "model M {\n    input x: float[8]\n    Dense(3)\n}\n",
        2,
        14,
        "unknown dtype 'float'",
        "float32",
    ),
    (
        "use-before-define",
        MLP % "    y = Dense(3)(z)\n    z = Dense(3)(x)",
        3,
        18,
        "unknown name 'z'",
        "after this use",
    ),
    (
        "cycle",
        MLP % "    a = Dense(8)(b)\n    b = Dense(8)(a)\n    output b",
        3,
        18,
        "unknown name 'b'",
        "no cycles",
    ),
    (
        "duplicate-input",
        "model M {\n    input x: float32[8]\n    input x: float32[8]\n    Dense(3)\n}\n",
        3,
        11,
        "input 'x' is declared twice",
        None,
    ),
    (
        "duplicate-output",
        MLP % "    output y = Dense(3)(x)\n    output y = Dense(2)(x)",
        4,
        12,
        "output 'y' is defined twice",
        None,
    ),
    (
        "duplicate-model",
        "model M {\n input x: float32[2]\n Dense(1)\n}\nmodel M {\n"
        " input x: float32[2]\n Dense(1)\n}\n",
        5,
        7,
        "model 'M' is defined twice",
        None,
    ),
    (
        "duplicate-layer-name",
        MLP % '    Dense(3, name="a")\n    Dense(3, name="a")',
        4,
        19,
        "the layer name 'a' is taken",
        None,
    ),
    ("bad-layer-name", MLP % '    Dense(3, name="a b")', 3, 14, "name expected a name", None),
    (
        "layer-name-as-variable",
        MLP % "    Dense = Dense(3)(x)",
        3,
        5,
        "'Dense' is a layer class",
        "another name",
    ),
    (
        "unknown-model-option",
        "model M(data_fromat=channels_first) {\n input x: float32[2]\n Dense(1)\n}\n",
        1,
        9,
        "unknown model option 'data_fromat'",
        "data_format",
    ),
    (
        "bad-data-format",
        "model M(data_format=channels_middle) {\n input x: float32[2]\n Dense(1)\n}\n",
        1,
        21,
        "data_format expected one of",
        None,
    ),
    # ---- argument types and ranges
    (
        "negative-units",
        MLP % "    Dense(-3)",
        3,
        11,
        "units expected a positive integer, got -3",
        None,
    ),
    ("float-units", MLP % "    Dense(3.5)", 3, 11, "units expected a positive integer", None),
    ("string-units", MLP % '    Dense("ten")', 3, 11, "units expected a positive integer", None),
    ("dropout-rate", MLP % "    Dropout(1.5)", 3, 13, "rate expected a number in [0, 1)", None),
    (
        "bool-arg",
        MLP % "    Dense(3, use_bias=yes)",
        3,
        23,
        "use_bias expected true or false",
        "true or false",
    ),
    ("missing-argument", MLP % "    Dense()", 3, 5, "Dense needs the argument 'units'", None),
    (
        "too-many-positional",
        MLP % "    Dropout(0.1, none, 3, 4)",
        3,
        5,
        "takes at most 3 positional arguments",
        None,
    ),
    ("repeat-count", MLP % "    repeat -1 { Dense(3) }", 3, 12, "repeat needs a count", None),
    (
        "layer-given-tensor",
        MLP % "    y = Dense(x)",
        3,
        15,
        "takes its settings here, not a tensor",
        "Dense(...)(x)",
    ),
    (
        "activation-call",
        MLP % "    Dense(3, activation=relu(0.1))",
        3,
        25,
        "expected an activation name",
        None,
    ),
    # ---- shapes and ranks
    (
        "dense-int-input",
        TOK % "    Dense(3)",
        3,
        5,
        "Dense expects a float tensor; got int64",
        "Embedding",
    ),
    (
        "embedding-float-input",
        MLP % "    Embedding(100, 8)",
        3,
        5,
        "Embedding expects integer token ids",
        None,
    ),
    ("add-mismatch", TWO % "    output y = a + b", 4, 16, "cannot be broadcast", None),
    (
        "concat-mismatch",
        "model M {\n input a: float32[8, 3]\n input b: float32[4, 3]\n"
        " output y = concat(a, b, axis=-1)\n}\n",
        4,
        13,
        "differ outside axis",
        None,
    ),
    (
        "matmul-mismatch",
        TWO % "    output y = reshape(a, [2, 4]) @ reshape(b, [2, 2])",
        4,
        16,
        "inner dimensions 4 and 2 differ",
        None,
    ),
    ("reshape-size", MLP % "    y = reshape(x, [3, 3])", 3, 9, "cannot reshape", None),
    ("reduce-batch-axis", MLP % "    y = mean(x, axis=0)", 3, 9, "batch axis", "axes count"),
    ("axis-out-of-range", MLP % "    y = softmax(x, axis=3)", 3, 9, "out of range", None),
    ("index-batch", MLP % "    y = x[0]", 3, 11, "batch axis and must be ':'", None),
    ("index-out-of-range", MLP % "    y = x[:, 8]", 3, 9, "index 8 is out of range", None),
    ("too-many-indices", MLP % "    y = x[:, 1, 2]", 3, 9, "too many indices", None),
    (
        "transpose-batch",
        SEQ % "    y = transpose(s, [1, 0, 2])",
        3,
        9,
        "batch axis must stay first",
        None,
    ),
    ("negate-layer", MLP % "    y = -Dense(3)", 3, 9, "cannot negate", None),
    (
        "add-layer",
        MLP % "    y = x + Dense(3)",
        3,
        9,
        "needs tensors or numbers",
        "apply the layer",
    ),
    ("call-tensor", MLP % "    y = x(x)", 3, 9, "cannot be called", None),
    (
        "unpack-count",
        SEQ % "    a, b = s |> reshape([80])",
        3,
        12,
        "expected several tensors to unpack",
        None,
    ),
    (
        "shared-layer-shape",
        TWO % "    enc = Dense(4)\n    p = enc(a)\n    q = enc(b)\n    output o = concat(p, q)",
        6,
        9,
        "shared layer 'dense' was built for input (None, 8)",
        None,
    ),
    # ---- model structure
    ("no-inputs", "model M {\n    const k = 1\n}\n", 1, 7, "model 'M' has no inputs", None),
    ("unused-input", TWO % "    output y = Dense(3)(a)", 3, 11, "input 'b' is never used", None),
    (
        "nothing-computed",
        "model M {\n    input x: float32[8]\n    const k = 3\n}\n",
        1,
        7,
        "computes nothing",
        "add layers",
    ),
    (
        "untyped-model-input",
        "model M {\n    input x\n    Dense(3)\n}\n",
        2,
        11,
        "model input 'x' needs a type",
        None,
    ),
    (
        "bare-layer-first",
        "model M {\n    Dense(3)\n    input x: float32[8]\n}\n",
        2,
        5,
        "nothing to apply",
        "declare an input",
    ),
    ("no-model", "const k = 3\n", 1, 1, "the file defines no model", None),
    ("statement-does-nothing", MLP % "    3", 3, 5, "this statement does nothing", None),
    (
        "zero-dim",
        "model M {\n    input x: float32[0]\n    Dense(3)\n}\n",
        2,
        22,
        "dimensions must be positive",
        None,
    ),
    ("const-tensor", MLP % "    const k = x", 3, 15, "a const must be", None),
    # ---- blocks
    (
        "recursive-block",
        "block B(n: int) {\n    input x\n    output B(n)(x)\n}\n" + MLP % "    B(3)",
        3,
        12,
        "block B uses itself",
        None,
    ),
    (
        "mutually-recursive-blocks",
        "block A() {\n input x\n output B()(x)\n}\n"
        "block B() {\n input x\n output A()(x)\n}\n" + MLP % "    A()",
        7,
        9,
        "uses itself",
        "cannot recurse",
    ),
    (
        "block-missing-param",
        "block B(n: int) {\n    input x\n    output Dense(n)(x)\n}\n" + MLP % "    B()",
        7,
        5,
        "block B needs the parameter 'n'",
        None,
    ),
    (
        "block-unknown-param",
        "block B(n: int) {\n    input x\n    output Dense(n)(x)\n}\n" + MLP % "    B(m=3)",
        7,
        7,
        "block B has no parameter 'm'",
        "parameters: n",
    ),
    (
        "block-param-type",
        "block B(n: int) {\n    input x\n    output Dense(n)(x)\n}\n" + MLP % "    B(2.5)",
        7,
        7,
        "parameter 'n' expects int",
        None,
    ),
    (
        "block-input-count",
        "block B() {\n    input x\n    input y\n    output x + y\n}\n" + MLP % "    B()",
        8,
        5,
        "block B takes 2 input tensors; got 1",
        None,
    ),
    (
        "block-error-inside",
        "block B() {\n    input x\n    output Dense(-1)(x)\n}\n" + MLP % "    B()",
        3,
        18,
        "units expected a positive integer",
        None,
    ),
    (
        "duplicate-block",
        "block B() {\n input x\n output x\n}\nblock B() {\n input x\n"
        " output x\n}\n" + MLP % "    B()",
        5,
        7,
        "block 'B' is defined twice",
        None,
    ),
    (
        "block-class-uncalled",
        "block B() {\n    input x\n    output x\n}\n" + MLP % "    B",
        7,
        5,
        "B is a block",
        "B(...)",
    ),
    (
        "layer-class-uncalled",
        MLP % "    y = x |> Dense",
        3,
        14,
        "Dense is a layer class",
        "Dense(...)",
    ),
]


def _load_error(tmp_path, source: str):
    path = tmp_path / "m.kdl"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(KdlErrors) as info:
        load(str(path))
    return info.value, path


@pytest.mark.parametrize(
    ("source", "line", "column", "message", "hint"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_error(tmp_path, source, line, column, message, hint):
    errors, path = _load_error(tmp_path, source)
    first = sorted(errors.errors, key=lambda e: (e.span.line, e.span.column) if e.span else (0, 0))
    matching = [e for e in first if message in e.message]
    assert matching, f"no error containing {message!r}; got:\n{errors.render()}"
    err = matching[0]
    assert err.span is not None and err.span.file == str(path)
    assert (err.span.line, err.span.column) == (line, column), errors.render()
    if hint is not None:
        assert err.hint and hint in err.hint, errors.render()
    rendered = errors.render()
    assert f"{path}:{line}:{column}: error: " in rendered
    assert "^" in rendered
    assert "Traceback" not in rendered


def test_at_least_sixty_cases():
    assert len(CASES) + len(FILE_CASES) >= 60


def test_all_errors_reported_together(tmp_path):
    source = MLP % "    Dense(-1)\n    Dense(3, activaton=relu)\n    y = Dense(3)(nope)"
    errors, _ = _load_error(tmp_path, source)
    assert len(errors.errors) == 3
    assert errors.render().endswith("3 errors")


def test_one_error_does_not_cascade(tmp_path):
    source = MLP % "    y = Dense(-1)(x)\n    z = Dense(3)(y)\n    output w = Dense(2)(z)"
    errors, _ = _load_error(tmp_path, source)
    assert len(errors.errors) == 1


# ---- inputs that need files of their own

FILE_CASES = [
    "missing-import",
    "import-cycle",
    "non-utf8",
    "empty",
    "huge",
    "deep-nesting",
    "whitespace-only",
    "directory",
    "missing-file",
]


def test_missing_import(tmp_path):
    errors, _ = _load_error(tmp_path, 'import "nope.kdl"\n' + MLP % "    Dense(3)")
    (err,) = errors.errors
    assert 'cannot import "nope.kdl"' in err.message
    assert (err.span.line, err.span.column) == (1, 1)


def test_import_cycle(tmp_path):
    (tmp_path / "a.kdl").write_text('import "b.kdl"\n')
    (tmp_path / "b.kdl").write_text('import "a.kdl"\n')
    errors, _ = _load_error(tmp_path, 'import "a.kdl"\n' + MLP % "    Dense(3)")
    assert any("import cycle" in e.message for e in errors.errors), errors.render()


def test_import_brings_blocks_and_consts(tmp_path):
    (tmp_path / "blocks.kdl").write_text(
        "const width = 5\nblock Wide() {\n    input x\n    output Dense(width)(x)\n}\n"
    )
    path = tmp_path / "m.kdl"
    path.write_text('import "blocks.kdl"\n' + MLP % "    Wide()")
    _, graphs = load(str(path))
    assert graphs["M"].outputs["output"].type.shape == ("batch", 5)


def test_non_utf8(tmp_path):
    path = tmp_path / "m.kdl"
    path.write_bytes(b"model M {\n    input x: float32[8]\n    # caf\xe9\n    Dense(3)\n}\n")
    with pytest.raises(KdlErrors) as info:
        load(str(path))
    (err,) = info.value.errors
    assert "not valid UTF-8" in err.message and "0xe9" in err.message
    assert (err.span.line, err.span.column) == (3, 10)


@pytest.mark.parametrize("text", ["", "   \n\n  ", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "m.kdl"
    path.write_text(text)
    with pytest.raises(KdlErrors) as info:
        load(str(path))
    message = info.value.errors[0].message
    assert "empty" in message or "defines no model" in message


def test_large_file(tmp_path):
    """A file just under the source budget (comments and one model): parsed, the error
    found on its last lines; a byte more is refused before it is read."""
    from transpiler.limits import MAX_SOURCE_BYTES

    path = tmp_path / "m.kdl"
    model = MLP % "    Dense(3, activaton=relu)"
    lines = (MAX_SOURCE_BYTES - len(model)) // 100
    filler = ("# " + "x" * 97 + "\n") * lines
    path.write_text(filler + model)
    assert MAX_SOURCE_BYTES - 100 < path.stat().st_size <= MAX_SOURCE_BYTES
    with pytest.raises(KdlErrors) as info:
        load(str(path))
    (err,) = info.value.errors
    assert err.span.line == lines + 3
    path.write_text(filler + model + " " * (MAX_SOURCE_BYTES - path.stat().st_size + 1))
    with pytest.raises(KdlErrors) as info:
        load(str(path))
    (err,) = info.value.errors
    assert f"the limit is {MAX_SOURCE_BYTES:,}" in err.message


def test_deep_nesting(tmp_path):
    errors, _ = _load_error(tmp_path, MLP % ("    y = " + "(" * 5000 + "x" + ")" * 5000))
    assert "nested more than" in errors.errors[0].message


def test_moderate_nesting_is_fine(tmp_path):
    path = tmp_path / "m.kdl"
    path.write_text(MLP % ("    y = " + "(" * 150 + "x" + ")" * 150 + "\n    output y"))
    _, graphs = load(str(path))
    assert graphs["M"].outputs["y"].type.shape == ("batch", 8)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(KdlErrors) as info:
        load(str(tmp_path))
    assert "is a directory" in info.value.errors[0].message
    with pytest.raises(KdlErrors) as info:
        load(str(tmp_path / "nope.kdl"))
    assert "no such file" in info.value.errors[0].message
