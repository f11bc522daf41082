"""Checks on the small real data sets shipped in examples/data/ (see tools/make_datasets.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parents[1] / "examples" / "data"
ARRAY_NAMES = {"x_train", "y_train", "x_test", "y_test"}

# name: (n_train, n_test, n_features, max pixel value, images per class in train+test)
SPECS = {
    "mnist_5k.npz": (4000, 1000, 784, 255, [500] * 10),
    # UCI optical digits as bundled with scikit-learn (load_digits): 1797 images.
    "digits.npz": (1437, 360, 64, 16, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def dataset(request):
    path = DATA_DIR / request.param
    assert path.is_file(), f"{path} missing; run: python tools/make_datasets.py"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return request.param, arrays


def test_array_names(dataset):
    _, arrays = dataset
    assert set(arrays) == ARRAY_NAMES


def test_shapes_and_dtypes(dataset):
    name, arrays = dataset
    n_train, n_test, n_features, _, _ = SPECS[name]
    assert arrays["x_train"].shape == (n_train, n_features)
    assert arrays["x_test"].shape == (n_test, n_features)
    assert arrays["y_train"].shape == (n_train,)
    assert arrays["y_test"].shape == (n_test,)
    assert arrays["x_train"].dtype == np.uint8
    assert arrays["x_test"].dtype == np.uint8
    assert arrays["y_train"].dtype == np.int64
    assert arrays["y_test"].dtype == np.int64


def test_value_ranges(dataset):
    name, arrays = dataset
    max_value = SPECS[name][3]
    for key in ("x_train", "x_test"):
        assert int(arrays[key].max()) == max_value  # uint8, so the minimum is >= 0
        assert int(arrays[key].min()) == 0
    for key in ("y_train", "y_test"):
        assert arrays[key].min() >= 0
        assert arrays[key].max() <= 9


def test_every_class_in_each_split(dataset):
    _, arrays = dataset
    assert np.unique(arrays["y_train"]).tolist() == list(range(10))
    assert np.unique(arrays["y_test"]).tolist() == list(range(10))


def test_class_counts(dataset):
    name, arrays = dataset
    per_class = SPECS[name][4]
    train = np.bincount(arrays["y_train"], minlength=10)
    test = np.bincount(arrays["y_test"], minlength=10)
    assert (train + test).tolist() == per_class


def test_split_is_shuffled(dataset):
    # The sources are sorted by label (MNIST) or nearly periodic (digits); a shuffled
    # split should not have its labels in sorted order.
    _, arrays = dataset
    for key in ("y_train", "y_test"):
        assert not np.all(np.diff(arrays[key]) >= 0)


# ---------------------------------------------------------------- digits_png/ and wine.csv


def test_digits_png_holds_the_digits_as_images():
    """Every image of digits.npz (train and test: the 1,797 digits), as an 8x8 grayscale
    PNG in its class's folder, values 0..16 stored as round(v * 255 / 16)."""
    from PIL import Image

    folder = DATA_DIR / "digits_png"
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert classes == [str(d) for d in range(10)]
    images, labels = [], []
    for label in classes:
        for path in sorted((folder / label).glob("*.png")):
            with Image.open(path) as image:
                assert image.mode == "L" and image.size == (8, 8)
                images.append(np.asarray(image).reshape(64))
            labels.append(int(label))
    with np.load(DATA_DIR / "digits.npz") as npz:
        x = np.concatenate([npz["x_train"], npz["x_test"]])
        y = np.concatenate([npz["y_train"], npz["y_test"]])
    assert np.array_equal(np.bincount(labels), np.bincount(y))
    expected = np.round(x.astype(np.float64) * 255 / 16).astype(np.uint8)
    ours = sorted(map(bytes, images))
    assert ours == sorted(map(bytes, expected))
    size = sum(p.stat().st_size for p in folder.rglob("*.png"))
    assert size < 300_000


def test_wine_csv():
    import csv

    with open(DATA_DIR / "wine.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    assert len(header) == 14 and header[0] == "alcohol" and header[-1] == "cultivar"
    assert len(rows) == 178
    classes = [r[-1] for r in rows]
    assert {c: classes.count(c) for c in sorted(set(classes))} == {
        "class_0": 59,
        "class_1": 71,
        "class_2": 48,
    }
    values = np.array([[float(v) for v in r[:-1]] for r in rows])
    assert values.shape == (178, 13) and np.isfinite(values).all()
    assert set(classes[-36:]) == {"class_0", "class_1", "class_2"}  # shuffled: a split has all
