"""The Jinja templates of templates/ (shipped inside the package as
`transpiler.templates`), set up for generated Python code."""

from __future__ import annotations

from pathlib import Path


def load_template(name: str):
    """The template `name` of templates/: no HTML escaping (every value put in is checked
    code or text already), strict about undefined values, block tags that leave no blank
    lines behind."""
    import jinja2

    try:
        from importlib import resources

        text = resources.files("transpiler.templates").joinpath(name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = (Path(__file__).resolve().parents[3] / "templates" / name).read_text("utf-8")
    env = jinja2.Environment(
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.from_string(text)
