"""Text -> AST. `parse_file(path)` or `parse_text(text, file)` return an `ast.Module`.

Syntax errors come out as `KdlErrors` with file:line:col. Imports are not followed here;
`transpiler.graph.load` resolves them.
"""

from transpiler.parser.parse import parse_file, parse_text, read_source

__all__ = ["parse_file", "parse_text", "read_source"]
