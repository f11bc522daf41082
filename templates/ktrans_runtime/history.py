"""history.json, history.csv and results.json.

history.json is Keras's History.history: a list per log key, and "epoch". history.csv
has a row per epoch; a key whose values are lists (precision at several thresholds) has
a column per item: key[0], key[1], ...
"""

from __future__ import annotations

from pathlib import Path

from .files import write_json, write_text


def write_history(out: Path, history: list[dict]) -> None:
    keys = sorted({key for row in history for key in row} - {"epoch"})
    columns = {"epoch": [row["epoch"] for row in history]}
    columns.update({key: [row.get(key) for row in history] for key in keys})
    write_json(out / "history.json", columns)
    header, cells_of = ["epoch"], []
    for key in keys:
        sizes = [len(v) for v in columns[key] if isinstance(v, list)]
        if not sizes:
            header.append(key)
            cells_of.append((key, None))
            continue
        header += [f"{key}[{i}]" for i in range(max(sizes))]
        cells_of += [(key, i) for i in range(max(sizes))]
    lines = [",".join(_csv_cell(h) for h in header)]
    for row in history:
        cells = [str(row["epoch"])]
        for key, i in cells_of:
            value = row.get(key)
            if i is not None:
                value = value[i] if isinstance(value, list) and i < len(value) else None
            cells.append("" if value is None else repr(value))
        lines.append(",".join(cells))
    write_text(out / "history.csv", "\n".join(lines) + "\n")


def _csv_cell(text: str) -> str:
    """A header cell, quoted as CSV quotes it when it holds a comma, quote or newline
    (a metric's name="..." may)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_results(out: Path, results: dict) -> None:
    write_json(out / "results.json", results)
