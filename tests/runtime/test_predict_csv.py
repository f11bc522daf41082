"""`ktrans predict` on CSV tables, on a run of examples/wine_mlp.kdl trained for one epoch
on examples/data/wine.csv: only the inputs' columns are read (a table without its target
column predicts the same), a missing input column is named, and the table streams in
batches of 64 rows, each written as it is predicted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from transpiler.cli import main
from transpiler.cli_predict import BATCH_SIZE, table_batches
from transpiler.run_folder import open_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WINE = EXAMPLES / "data" / "wine.csv"


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("wine") / "run"
    assert main(["train", str(EXAMPLES / "wine_mlp.kdl"), "--data", str(WINE),
                 "--out", str(run), "--epochs", "1", "--verbose", "0"]) == 0  # fmt: skip
    return run


def without(path: Path, columns: set[str], out: Path) -> Path:
    """A copy of the CSV file at `path` without `columns`."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name not in columns]
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows([[row[i] for i in keep] for row in rows])
    return out


def predict_json(run, table: Path, out: Path) -> list[dict]:
    assert main(["predict", str(run), "--input", str(table), "--top-k", "3",
                 "-o", str(out)]) == 0  # fmt: skip
    return json.loads(out.read_text())


def test_a_table_without_the_target_column_predicts_the_same(wine_run, tmp_path):
    full = predict_json(wine_run, WINE, tmp_path / "full.json")
    bare = without(WINE, {"cultivar"}, tmp_path / "new.csv")
    assert predict_json(wine_run, bare, tmp_path / "bare.json") == full
    assert len(full) == 178 and full[0]["item"] == "row 1"
    assert list(full[0]) == [
        "item", "top1_class", "top1_score", "top2_class", "top2_score", "top3_class", "top3_score",
    ]  # fmt: skip
    for row in full:  # every class once, best first
        assert sorted(row[f"top{k}_class"] for k in (1, 2, 3)) == ["class_0", "class_1", "class_2"]
        assert row["top1_score"] >= row["top2_score"] >= row["top3_score"]


@pytest.mark.parametrize("drop", [{"proline"}, {"proline", "cultivar"}])
def test_a_missing_input_column_is_named(wine_run, tmp_path, capsys, drop):
    table = without(WINE, drop, tmp_path / "new.csv")
    assert main(["predict", str(wine_run), "--input", str(table)]) == 1
    err = capsys.readouterr().err
    assert f"error: {table}: no column 'proline' for the input 'features'" in err
    assert "categorical" not in err and "Traceback" not in err


def test_a_table_streams_in_batches(wine_run, tmp_path, capsys):
    run = open_run(str(wine_run))
    import onnxruntime as ort

    from transpiler.templates.ktrans_runtime.sources import feeds_of

    infos = ort.InferenceSession(str(run.model_file)).get_inputs()
    feeds = feeds_of(infos, [i.name for i in infos], {})
    sizes, names = [], []
    for items, batch in table_batches(WINE, feeds, run):
        sizes.append(len(batch["features"]))
        names += items
    assert sizes == [BATCH_SIZE, BATCH_SIZE, 178 - 2 * BATCH_SIZE]
    assert names == [f"row {i}" for i in range(1, 179)]

    # a bad row after the first batches: the batches before it were read and predicted,
    # the error names its line, and no output file (nor temporary) is left
    lines = WINE.read_text().splitlines()
    lines[150] = lines[150].replace(",", ";", 1)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines) + "\n")
    batches = table_batches(ragged, feeds, run)
    assert len(next(batches)[0]) == BATCH_SIZE and len(next(batches)[0]) == BATCH_SIZE
    out = tmp_path / "p.csv"
    assert main(["predict", str(wine_run), "--input", str(ragged), "-o", str(out)]) == 1
    assert f"{ragged}:151: the row has 13 fields, the header has 14" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.glob(".p.csv*")) == []


def test_csv_and_json_outputs_hold_the_same_rows(wine_run, tmp_path):
    rows = predict_json(wine_run, WINE, tmp_path / "p.json")
    assert main(["predict", str(wine_run), "--input", str(WINE), "--top-k", "3",
                 "-o", str(tmp_path / "p.csv")]) == 0  # fmt: skip
    with open(tmp_path / "p.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["item"] for r in table] == [r["item"] for r in rows]
    for got, want in zip(table, rows):
        assert got["top2_class"] == want["top2_class"]
        assert float(got["top1_score"]) == want["top1_score"]
