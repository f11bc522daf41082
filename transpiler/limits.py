"""Budgets: how much work any input may ask of ktrans, in one place.

A .kdl file, an ONNX file or a weights file is data, and small data can ask for a lot:
`repeat 100 { repeat 100 { repeat 100 { ... } } }`, `const a = 10 ** 10 ** 10`, a FIFO
as an import, a zip member that inflates to gigabytes. Every such request is checked
against a budget here *before* the work or the allocation happens, and going over one is
an ordinary input error (exit 1) naming the limit. docs/language.md lists them for users.
"""

from __future__ import annotations

# ---------------------------------------------------------------- source text
#: bytes of one .kdl file (the file given and each file it imports)
MAX_SOURCE_BYTES = 1024 * 1024
#: bytes of a whole program: the file given and everything it imports, together
MAX_PROGRAM_BYTES = 2 * 1024 * 1024
#: characters in one string literal ("..." or '...')
MAX_STRING_CHARS = 4096
#: digits in one integer literal (int64 has 19)
MAX_INT_DIGITS = 19
#: brackets ( [ { open at once
MAX_NESTING = 200
#: expressions nested inside each other, after chains of the same left-associative
#: operator (a + b + c, x |> A |> B, p and q and r) are counted as one level
MAX_EXPRESSION_DEPTH = 250
#: imports inside imports
MAX_IMPORT_DEPTH = 50

# ---------------------------------------------------------------- constant values
#: the largest magnitude of an integer a const or an argument may hold: int64, the
#: widest integer an ONNX model stores (floats must stay finite)
MAX_INT_MAGNITUDE = 2**63 - 1

# ---------------------------------------------------------------- expansion
#: a repeat's count, and the product of the counts of repeats nested in each other
#: (through blocks too): checked when a repeat starts, before its body is expanded
MAX_REPEAT = 10_000
#: layers (and expression ops) in one model after repeats and blocks are expanded
MAX_LAYERS = 10_000
#: block instances plus repeat iterations in one model (bounds the work of expansions
#: that add few or no layers, such as a block calling an empty block twice, 30 times)
MAX_EXPANSIONS = 100_000
#: blocks expanded inside each other
MAX_BLOCK_DEPTH = 64
#: Python's recursion limit while a model is expanded: enough for the deepest structure
#: the budgets above allow (64 blocks, each with `if`s nested 200 deep, ~26,000 frames);
#: Python 3.11 keeps these frames off the C stack
RECURSION_LIMIT = 50_000

# ---------------------------------------------------------------- reports
#: errors printed in full; the rest are counted ("... and 199,900 more errors")
MAX_ERRORS_SHOWN = 100

# ---------------------------------------------------------------- files ktrans reads
#: an ONNX file given to `viz` or `run` (protobuf cannot hold more in one message)
MAX_ONNX_BYTES = 2**31 - 1
#: one path component a .kdl file names (a file system's NAME_MAX)
MAX_PATH_COMPONENT_BYTES = 255
#: a whole path a .kdl file names, relative to the output folder
MAX_PATH_BYTES = 1024
