"""CSV tables with a header row as training data.

    alcohol,malic_acid,...,proline,cultivar
    14.23,1.71,...,1065,class_0

Each feed (a model input, or an output's target) takes its values from columns:

- by default the column named after the input or output;
- or as `columns` maps it: `{ features: ["alcohol", "malic_acid"], output: "cultivar" }`;
  `"*"` stands for every column that nothing else takes, in header order.

The values of a feed's columns make one row, reshaped to the feed's shape when the
counts agree (13 columns for `float32[13]`). Columns are numbers unless listed in
`categorical`: a categorical column's strings become indices into its vocabulary, the
sorted distinct values of the training table (reused, not rebuilt, for validation, test
and prediction tables, where an unknown value is an error). A target with one unit per
class takes one column of class ids (or a categorical column) and gets one-hot rows.

Every problem names the file, the line, the column and what was expected: a row with
more or fewer fields than the header, a missing column, a value that is not a number,
a fraction where the model takes integers, a class out of range.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data_errors import DataError
from .feeds import ArrayDataset, Feed, one_hot

REST = "*"


@dataclass
class CsvSettings:
    columns: dict[str, str | list[str]] = field(default_factory=dict)
    categorical: list[str] = field(default_factory=list)
    delimiter: str = ","


@dataclass
class Table:
    """A parsed CSV file: the header and the columns as strings, with line numbers."""

    path: Path
    header: list[str]
    columns: dict[str, list[str]]
    lines: list[int]  # the file line of each row

    @property
    def rows(self) -> int:
        return len(self.lines)


def read_table(path: str | Path, delimiter: str = ",") -> Table:
    """The header and the rows of a CSV file; ragged rows are errors."""
    table = next(table_chunks(path, delimiter))
    if not table.rows:
        raise DataError(f"{table.path}: the table has a header but no rows")
    return table


def table_chunks(
    path: str | Path, delimiter: str = ",", rows: int | None = None
) -> Iterator[Table]:
    """The CSV file as Tables of at most `rows` rows each (None: one Table of every row),
    read as they are asked for, so that a large file streams; a file with a header and
    no rows gives one empty Table. The header is checked before the first Table; a
    ragged row is an error when its Table is read."""
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise DataError(f"{path}: cannot read it: {e.strerror or e}") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: the file is empty; a CSV table starts with a header")
            header = [name.strip() for name in header]
            repeated = sorted({n for n in header if header.count(n) > 1})
            if repeated:
                raise DataError(f"{path}:1: the header names the column '{repeated[0]}' twice")
            values: list[list[str]] = [[] for _ in header]
            lines: list[int] = []
            given = 0
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                if len(row) != len(header):
                    raise DataError(
                        f"{path}:{reader.line_num}: the row has {len(row)} fields, the "
                        f"header has {len(header)}"
                    )
                for column, value in zip(values, row):
                    column.append(value)
                lines.append(reader.line_num)
                if rows is not None and len(lines) == rows:
                    yield Table(path, header, dict(zip(header, values)), lines)
                    values, lines, given = [[] for _ in header], [], given + 1
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None
        if lines or not given:
            yield Table(path, header, dict(zip(header, values)), lines)


def feed_columns(table: Table, feeds: list[Feed], settings: CsvSettings) -> dict[str, list[str]]:
    """{feed name: its columns}: the mapping, else the column named after the feed."""
    keys = {feed.key for feed in feeds}
    unknown = [k for k in settings.columns if k not in keys]
    if unknown:
        raise DataError(
            f"columns maps '{unknown[0]}', which is not an input or output of the model; "
            f"it has: {', '.join(sorted(keys))}"
        )
    chosen: dict[str, list[str]] = {}
    rest = []
    for feed in feeds:
        mapped = settings.columns.get(feed.key, feed.key)
        if mapped == REST:
            rest.append(feed)
            continue
        names = [mapped] if isinstance(mapped, str) else list(mapped)
        for name in names:
            if name not in table.columns:
                hint = (
                    ""
                    if feed.key in settings.columns
                    else (f"; map columns to it: data {{ columns = {{ {feed.key}: [...] }} }}")
                )
                raise DataError(
                    f"{table.path}: no column '{name}' for {feed.describe()}; the header "
                    f"has: {', '.join(table.header)}{hint}"
                )
        chosen[feed.name] = names
    used = {name for names in chosen.values() for name in names}
    for feed in rest:
        chosen[feed.name] = [n for n in table.header if n not in used]
    return chosen


def vocabulary(table: Table, column: str) -> list[str]:
    return sorted(set(table.columns[column]))


def column_values(table: Table, column: str, vocab: list[str] | None) -> np.ndarray:
    """One column as float64: numbers, or indices into `vocab` (categorical)."""
    strings = table.columns[column]
    if vocab is not None:
        index = {value: i for i, value in enumerate(vocab)}
        out = np.empty(len(strings), np.float64)
        for row, value in enumerate(strings):
            if value not in index:
                shown = ", ".join(repr(v) for v in vocab[:8]) + (", ..." if len(vocab) > 8 else "")
                raise DataError(
                    f"{table.path}:{table.lines[row]}: column '{column}' holds {value!r}, "
                    f"which the training data's vocabulary does not have ({shown})"
                )
            out[row] = index[value]
        return out
    out = np.empty(len(strings), np.float64)
    for row, value in enumerate(strings):
        try:
            out[row] = float(value)
        except ValueError:
            what = "is empty" if not value.strip() else f"holds {value!r}"
            raise DataError(
                f"{table.path}:{table.lines[row]}: column '{column}' {what}, expected a "
                f"number (a column of strings is categorical: data {{ categorical = "
                f'["{column}"] }})'
            ) from None
    return out


def feed_array(table: Table, feed: Feed, names: list[str], vocabs: dict) -> np.ndarray:
    """The feed's rows from its columns, shaped and typed as the model takes them."""
    values = np.stack([column_values(table, n, vocabs.get(n)) for n in names], axis=1)
    rows = table.rows
    where = f"{table.path}: column{'s' * (len(names) > 1)} {', '.join(names)}"
    classes = feed.classes
    if classes > 1 and len(names) == 1:  # class ids for one-hot rows
        ids = values[:, 0]
        fractional = np.flatnonzero(ids != np.round(ids))
        if fractional.size:
            raise DataError(
                f"{table.path}:{table.lines[fractional[0]]}: column '{names[0]}' holds "
                f"{ids[fractional[0]]}, expected a class id (0..{classes - 1})"
            )
        print(
            f"data: {table.path.name}: column '{names[0]}' one-hot encoded for "
            f"'{feed.key}' ({classes} classes)",
            file=sys.stderr,
        )
        return one_hot(ids.astype(np.int64), classes, feed.dtype, where)
    shape = tuple(feed.shape)
    if not all(isinstance(d, int) for d in shape) or math.prod(shape) != len(names):
        raise DataError(
            f"{where}: {len(names)} value{'s' * (len(names) != 1)} per row, but "
            f"{feed.describe()} takes {feed.wants()}"
        )
    if not np.issubdtype(np.dtype(feed.dtype), np.floating):
        fractional = np.argwhere(values != np.round(values))
        if fractional.size:
            row, col = fractional[0]
            raise DataError(
                f"{table.path}:{table.lines[row]}: column '{names[col]}' holds "
                f"{values[row, col]}, expected an integer ({np.dtype(feed.dtype).name})"
            )
    return values.reshape(rows, *shape).astype(feed.dtype)


@dataclass
class CsvData:
    dataset: ArrayDataset
    vocabularies: dict[str, list[str]]  # categorical column -> its values, by index
    class_names: dict[str, list[str]]  # output -> class names (a categorical target)
    columns: dict[str, list[str]]  # feed name -> columns


def open_csv(
    path: str | Path,
    feeds: list[Feed],
    settings: CsvSettings,
    vocabularies: dict[str, list[str]] | None = None,
) -> CsvData:
    """The table at `path` as a dataset of `feeds`. `vocabularies`: those of the training
    table, for validation, test and prediction tables (else built from this one)."""
    table = read_table(path, settings.delimiter)
    columns = feed_columns(table, feeds, settings)  # a feed's missing column first
    for name in settings.categorical:
        if name not in table.columns:
            raise DataError(
                f"{table.path}: categorical names the column '{name}', which the header "
                f"does not have: {', '.join(table.header)}"
            )
    vocabs = {}
    for name in settings.categorical:
        given = (vocabularies or {}).get(name)
        vocabs[name] = list(given) if given is not None else vocabulary(table, name)
    arrays = {}
    class_names = {}
    for feed in feeds:
        names = columns[feed.name]
        arrays[feed.name] = feed_array(table, feed, names, vocabs)
        if feed.is_target and len(names) == 1 and names[0] in vocabs:
            class_names[feed.key] = vocabs[names[0]]
    return CsvData(ArrayDataset(arrays), vocabs, class_names, columns)
