"""Training curves (`history.png`) and the run report (`report.html`).

    write_report(run_dir)      # both files, from what the run folder holds

`history.png`: one panel per logged quantity (the loss, each metric), the training value
per epoch against the validation value (`val_` + key), plotted with matplotlib's Agg
backend (imported here, not when the runtime loads; without matplotlib the report says
so and has no curves).

`report.html`: one self-contained page that opens offline: inline CSS, the curves and the
model diagram as data: URIs, no script, no external resource. It shows the curves, the
diagram and the summary table that ktrans wrote into the bundle at codegen time
(`<Model>.svg`, `<Model>.summary.txt`), the run's settings (train block, data), the final
and test metrics, and how long it took. Every text from the .kdl file or the data is
escaped. The files it reads (all optional but history.json):

    history.json       {key: [value per epoch], "epoch": [...]}       the loop
    results.json       model, epochs, steps, final, test, timings       the loop
    <Model>.eval.json  train block settings (fit, losses, metrics)      ktrans codegen
    data.json          data kind, settings, class names, skipped files  sources.py
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from pathlib import Path

from .files import write_bytes

HISTORY_PNG = "history.png"
REPORT_HTML = "report.html"
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 64em;
       padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f9; padding: 0.8em; overflow-x: auto; font-size: 12.5px;
      line-height: 1.25; }
figure { margin: 0.5em 0; } figure img { max-width: 100%; height: auto; }
.diagram img { max-height: 60em; border: 1px solid #eee; }
.note { color: #8a5a00; }
"""


# ---------------------------------------------------------------- files


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None


def _file_stem(run_dir: Path, results: dict | None) -> str | None:
    """What the run's model files are named after (`<stem>.eval.json`, `<stem>.svg`): the
    trained model's stem, a shortened name for a long model name; else the one
    `*.eval.json` of the folder."""
    trained = (results or {}).get("trained_model")
    if isinstance(trained, str) and "." in trained:
        return trained.split(".")[0]
    found = sorted(run_dir.glob("*.eval.json"))
    return found[0].name[: -len(".eval.json")] if found else None


# ---------------------------------------------------------------- the curves


def curve_keys(history: dict) -> list[str]:
    """The quantities to plot: every logged key with numbers per epoch, training keys
    first (a validation key joins its training key's panel)."""
    keys = []
    for key, values in history.items():
        if key in ("epoch", "learning_rate") or not isinstance(values, list):
            continue
        if not all(isinstance(v, (int, float)) or v is None for v in values):
            continue  # a metric that logs a list per epoch (several thresholds)
        base = key.removeprefix("val_")
        if base not in keys:
            keys.append(base)
    return keys


def plot_history(history: dict, path: Path) -> Path | None:
    """Writes the curves to `path` (PNG); None if matplotlib is missing or there is
    nothing to plot."""
    keys = curve_keys(history)
    if not keys:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        print("note: no history.png: matplotlib is not installed", file=sys.stderr)
        return None
    epochs = [e + 1 for e in history.get("epoch", [])] or None
    columns = min(len(keys), 3)
    rows = math.ceil(len(keys) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.1 * rows), dpi=100, layout="constrained")
    for i, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, i + 1)
        for name, label, style in ((key, "training", "-o"), (f"val_{key}", "validation", "-s")):
            values = history.get(name)
            if not values or not curve_keys({name: values}):
                continue
            x = epochs if epochs and len(epochs) == len(values) else range(1, len(values) + 1)
            points = [(e, v) for e, v in zip(x, values) if v is not None]
            axes.plot(*zip(*points), style, label=label, markersize=3.5, linewidth=1.6)
        axes.set_title(key)
        axes.set_xlabel("epoch")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
        axes.xaxis.get_major_locator().set_params(integer=True)
        if len(history.get(key) or []) <= 12:  # few epochs: a tick at each (1, not 0.96)
            axes.set_xticks(range(1, len(history[key]) + 1) if epochs is None else epochs)
    buffer = _png_bytes(figure)
    return write_bytes(path, buffer)


def _png_bytes(figure) -> bytes:
    import io

    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


# ---------------------------------------------------------------- the page


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(json.dumps(value) if not isinstance(value, str) else value)
    if isinstance(value, int):
        return str(value)  # a seed reads 1337, not 1,337
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.4g}"


def _table(rows: list[tuple], header: tuple | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = [f"<th>{html.escape(str(row[0]))}</th>"]
        for value in row[1:]:
            css = ' class="num"' if isinstance(value, (int, float)) else ""
            cells.append(f"<td{css}>{_number(value)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _metrics(final: dict | None, test: dict | None) -> str:
    final = {k: v for k, v in (final or {}).items() if k != "learning_rate"}
    keys = [k for k in final if not k.startswith("val_")]
    rows = []
    for key in keys or list(test or {}):
        row = [key, final.get(key, "—"), final.get(f"val_{key}", "—")]
        if test:
            row.append(test.get(key, "—"))
        rows.append(tuple(row))
    header = ("", "training (last epoch)", "validation") + (("test",) if test else ())
    return _table(rows, header) if rows else "<p>No metrics were logged.</p>"


def _duration(results: dict) -> list[tuple]:
    rows = []
    for key, label in (("seconds", "wall time"), ("step_seconds", "in training steps")):
        value = results.get(key)
        if isinstance(value, (int, float)):
            minutes, seconds = divmod(value, 60)
            rows.append(
                (label, f"{int(minutes)} min {seconds:.1f} s" if minutes else f"{value:.2f} s")
            )
    rate = results.get("steps_per_second")
    if isinstance(rate, (int, float)):
        rows.append(("steps per second", f"{rate:.1f}"))
    return rows


def _settings(results: dict, evaluation: dict | None, data: dict | None) -> list[tuple]:
    rows = []
    for key in ("train_block", "epochs", "steps", "stopped_early", "device"):
        if key in results:
            rows.append((key.replace("_", " "), results[key]))
    data_settings = (data or {}).get("settings") or {}
    if evaluation:
        fit = evaluation.get("fit", {})
        for key in ("batch_size", "validation_split", "shuffle"):
            if key == "validation_split" and data_settings.get(key) is not None:
                continue  # the data section's split is the one used (an image folder's)
            if key in fit:
                rows.append((key, fit[key]))
        for key in ("optimizer", "learning_rate"):
            if key in evaluation:
                rows.append((key, evaluation[key]))
        losses = evaluation.get("loss_names") or {}
        rows += [(f"loss ({output})" if len(losses) > 1 else "loss", loss)
                 for output, loss in losses.items()]  # fmt: skip
    if data:
        rows.append(("data", f"{data.get('kind')}: {data.get('path')}"))
        for key, value in data_settings.items():
            if value not in (None, [], {}):
                rows.append((f"data: {key}", value))
        for split, count in (data.get("rows") or {}).items():
            rows.append((f"{split} rows", count))
    return rows


def render_html(run_dir: Path) -> str:
    """The report page of the run in `run_dir`."""
    results = _read_json(run_dir / "results.json") or {}
    data = _read_json(run_dir / "data.json")
    stem = _file_stem(run_dir, results) or "model"
    model = results["model"] if isinstance(results.get("model"), str) else stem
    evaluation = _read_json(run_dir / f"{stem}.eval.json")
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(model)}: training report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{esc(model)}</h1>",
        f'<p class="sub">training report · train block '
        f"{esc(str(results.get('train_block', '?')))}</p>",
        "<h2>Training curves</h2>",
    ]
    png = run_dir / HISTORY_PNG
    if png.is_file():
        uri = _data_uri("image/png", png.read_bytes())
        parts.append(f'<figure class="curves"><img id="curves" alt="training curves" src="{uri}">')
        parts.append("</figure>")
    else:
        parts.append('<p class="note">No curves (no history yet, or matplotlib missing).</p>')
    parts.append("<h2>Metrics</h2>")
    parts.append(_metrics(results.get("final"), results.get("test")))
    if results.get("test_rows"):
        parts.append(f"<p>Test data: {results['test_rows']:,} rows.</p>")
    duration = _duration(results)
    if duration:
        parts += ["<h2>Time</h2>", _table(duration)]
    parts.append("<h2>Settings</h2>")
    parts.append(_table(_settings(results, evaluation, data)))
    skipped = (data or {}).get("skipped") or []
    if skipped:
        parts.append(f'<p class="note">{len(skipped)} unreadable file(s) skipped:</p><ul>')
        parts += [f"<li>{esc(p)}: {esc(why)}</li>" for p, why in skipped[:50]]
        parts.append("</ul>")
    svg = run_dir / f"{stem}.svg"
    parts.append("<h2>Model</h2>")
    if svg.is_file():
        uri = _data_uri("image/svg+xml", svg.read_bytes())
        parts.append(f'<figure class="diagram"><img id="diagram" alt="model diagram" src="{uri}">')
        parts.append("</figure>")
    summary = run_dir / f"{stem}.summary.txt"
    if summary.is_file():
        parts.append(f"<pre>{esc(summary.read_text(encoding='utf-8'))}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(run_dir: str | Path) -> list[Path]:
    """history.png (when there is a history) and report.html, in `run_dir`."""
    run_dir = Path(run_dir)
    written = []
    history = _read_json(run_dir / "history.json")
    if history:
        png = plot_history(history, run_dir / HISTORY_PNG)
        if png:
            written.append(png)
    page = render_html(run_dir).encode("utf-8")
    written.append(write_bytes(run_dir / REPORT_HTML, page))
    return written
