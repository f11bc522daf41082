"""Lark's syntax exceptions as KdlErrors: what was found, what was expected (in the
words a user writes), where, and a hint for the common slips."""

from __future__ import annotations

from lark import Token, UnexpectedCharacters, UnexpectedToken

from transpiler.errors import KdlError, Span

# What the parser expected, said the way a user would write it.
_TOKEN_WORDS = {
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "AT": "'@'",
    "QMARK": "'?'",
    "NAME": "a name",
    "INT": "an integer",
    "NUMBER_FLOAT": "a number",
    "STRING": "a string",
    "$END": "end of file",
}


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    value = str(token)
    if token.type == "NAME":
        return f"name '{value}'"
    if token.type in ("INT", "NUMBER_FLOAT"):
        return f"number {value}"
    if token.type == "STRING":
        return f"string {value}"
    return f"'{value}'"


def _expected_words(expected: set[str]) -> str:
    words = sorted(
        {_TOKEN_WORDS.get(t, f"'{t.lower()}'") for t in expected if not t.startswith("_")}
    )
    if len(words) > 6:
        words = words[:6] + ["..."]
    return ", ".join(words)


def token_error(text: str, file: str, e: UnexpectedToken) -> KdlError:
    tok = e.token
    if tok.type == "$END":
        return eof_error(text, file)
    span = Span(file, tok.line, tok.column, tok.end_line, tok.end_column)
    expected = set(e.expected or ())
    got = _describe(tok)
    hint = None
    if tok.type == "EQUAL" and "RPAR" in expected:
        hint = "keyword arguments are written name=value inside a call"
    elif tok.type == "RBRACE" and expected & {"NAME", "INT"}:
        hint = "an expression is incomplete before the '}'"
    elif "RPAR" in expected and "COMMA" in expected:
        hint = "separate arguments with ',' and close the call with ')'"
    elif "RSQB" in expected and "COMMA" in expected:
        hint = "separate items with ',' and close the list with ']'"
    elif tok.type == "NAME" and str(tok) in ("input", "output", "repeat", "const"):
        hint = f"'{tok}' starts a statement inside a model or block"
    elif expected == {"LBRACE"} or ("LBRACE" in expected and len(expected) <= 3):
        hint = "a model, block or train body starts with '{'"
    elif tok.type == "NAME" and expected & {"MODEL", "BLOCK", "TRAIN", "IMPORT", "CONST"}:
        hint = "a file holds `model`, `block`, `train`, `import` and `const` definitions"
    return KdlError(span, f"unexpected {got}; expected {_expected_words(expected)}", hint)


def eof_error(text: str, file: str) -> KdlError:
    """Points just past the last thing written (comments and blank lines don't count)."""
    lines = text.splitlines() or [""]
    line_no = len(lines)
    while line_no > 1 and not _code(lines[line_no - 1]).strip():
        line_no -= 1
    code = _code(lines[line_no - 1]).rstrip()
    return KdlError(
        Span(file, line_no, len(code) + 1),
        "unexpected end of file",
        "a bracket or brace is probably not closed",
    )


def _code(line: str) -> str:
    """The line without a trailing comment (good enough for positioning carets)."""
    for marker in ("#", "//"):
        at = line.find(marker)
        if at >= 0 and line.count('"', 0, at) % 2 == 0:
            line = line[:at]
    return line


# Python modules a Keras script names things through (`layers.Dense`, `keras.ops.relu`)
_MODULES = ("layers", "keras", "tf", "tensorflow", "ops", "activations", "optimizers", "K")


def _dot_hint(e: UnexpectedCharacters) -> str:
    """A '.' after a name: most likely a prefix pasted from a Keras script."""
    history = getattr(e, "token_history", None) or []
    before = str(history[-1]) if history and history[-1].type == "NAME" else ""
    if before in _MODULES:
        return (
            "drop the module prefix ('layers.', 'keras.layers.', 'tf.keras.layers.'): .kdl "
            "names layers, functions and optimizers alone, e.g. Dense(64)"
        )
    return "'.' is not an operator in .kdl (no attributes or methods); for a shape write shape(x)"


def char_error(file: str, e: UnexpectedCharacters) -> KdlError:
    ch = e.char
    span = Span(file, e.line, e.column, e.line, e.column + 1)
    if ch in "\"'":
        return KdlError(span, "unterminated string", "close the string on the same line")
    hint = None
    if ch == ";":
        hint = "statements are separated by newlines; no ';' is needed"
    elif ch == "|":
        hint = "the pipeline operator is '|>'"
    elif ch == "=":
        hint = "'==' is not an operator in .kdl; use '=' to bind a name"
    elif ch == ".":
        hint = _dot_hint(e)
    elif not ch.isprintable() or ord(ch) > 127:
        hint = "names use ASCII letters, digits and '_'"
    return KdlError(span, f"unexpected character {ch!r}", hint)
