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
