"""ktrans: a compiler for .kdl model files (a small, Keras-flavoured language).

Pipeline: text --parser--> AST --graph--> checked Graph --emit--> ONNX / code / diagrams.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

# Installed, grammar/ and templates/ are the subpackages transpiler.grammar and
# transpiler.templates (pyproject.toml maps them). Run from a source tree with no install
# (PYTHONPATH=., as on a bare GPU machine), they sit beside transpiler/: let the package
# find its subpackages there too.
_tree = _Path(__file__).resolve().parent.parent
if (_tree / "grammar" / "kdl.lark").is_file() and (_tree / "templates").is_dir():
    __path__.append(str(_tree))
