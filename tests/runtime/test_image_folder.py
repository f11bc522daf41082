"""The image-folder reader against Keras 3's own `image_dataset_from_directory` (torch
backend, format="grain", which reads with Pillow as ktrans does): the same class names,
the same files in each subset for the same seed, the same labels, and the same pixel
values after resizing (1e-5 relative: torch's float32 kernel may round a product once
where numpy rounds it twice, a few units in the last place of values up to 255)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.image_samples import write_image_folder
from transpiler.templates.ktrans_runtime import image_folder
from transpiler.templates.ktrans_runtime.data_errors import DataError
from transpiler.templates.ktrans_runtime.image_folder import (
    ImageSettings,
    index_folder,
    open_image_folder,
    read_image,
)

keras = pytest.importorskip("keras")
pytest.importorskip("grain")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"))


def keras_dataset(folder, **kwargs):
    kwargs.setdefault("batch_size", None)
    return keras.utils.image_dataset_from_directory(
        str(folder), format="grain", verbose=False, **kwargs
    )


def keras_arrays(dataset):
    images, labels = zip(*[(np.asarray(x), np.asarray(y)) for x, y in dataset])
    return np.stack(images), np.stack(labels)


@pytest.mark.parametrize(("split", "seed"), [(0.25, 1337), (0.5, 7), (0.3, 0)])
def test_same_class_names_and_split_files_as_keras(folder, split, seed):
    train, val = keras_dataset(
        folder, validation_split=split, subset="both", seed=seed, image_size=(8, 8)
    )
    settings = ImageSettings((8, 8), validation_split=split, seed=seed)
    (ours_train, ours_val), index = open_image_folder(
        folder, settings, "image", (8, 8, 3), subsets=("training", "validation")
    )
    assert index.class_names == train.class_names == ["cat", "dog", "emu"]
    assert ours_train.paths == train.file_paths
    assert ours_val.paths == val.file_paths
    assert len(ours_train.paths) + len(ours_val.paths) == 13


@pytest.mark.parametrize(
    ("color_mode", "size", "interpolation"),
    [
        ("rgb", (10, 12), "bilinear"),
        ("grayscale", (7, 5), "bilinear"),
        ("rgba", (16, 16), "bilinear"),
        ("rgb", (6, 9), "nearest"),
        ("grayscale", (21, 4), "nearest"),
    ],
)
def test_same_pixels_and_labels_as_keras(folder, color_mode, size, interpolation):
    kwargs = dict(color_mode=color_mode, image_size=size, interpolation=interpolation)
    images, labels = keras_arrays(
        keras_dataset(folder, shuffle=False, label_mode="categorical", **kwargs)
    )
    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}[color_mode]
    settings = ImageSettings(size, color_mode, interpolation, shuffle=False)
    (dataset,), _ = open_image_folder(
        folder, settings, "image", (*size, channels), "target:out", (3,), np.float32
    )
    batch = dataset.take(np.arange(dataset.size))
    assert batch["image"].dtype == np.float32
    assert batch["image"].shape == images.shape
    np.testing.assert_allclose(batch["image"], images, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(batch["target:out"], labels)


def test_int_and_binary_labels_as_keras(folder, tmp_path):
    _, int_labels = keras_arrays(keras_dataset(folder, shuffle=False, image_size=(4, 4)))
    settings = ImageSettings((4, 4), shuffle=False)
    (dataset,), _ = open_image_folder(folder, settings, "x", (4, 4, 3), "target:y", (), np.int64)
    ids = dataset.take(slice(0, dataset.size))["target:y"]
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, int_labels)

    two = write_image_folder(tmp_path / "two")
    (two / "emu" / "a.png").rename(two / "dog" / "z.png")
    for f in (two / "emu").rglob("*"):
        f.unlink()
    (two / "emu").rmdir()
    _, binary = keras_arrays(
        keras_dataset(two, shuffle=False, image_size=(4, 4), label_mode="binary")
    )
    (dataset,), _ = open_image_folder(
        two, settings, "x", (4, 4, 3), "target:y", (1,), np.float32, label_mode="binary"
    )
    np.testing.assert_array_equal(dataset.take(slice(0, dataset.size))["target:y"], binary)


def test_class_names_pick_and_order(folder):
    index = index_folder(folder, class_names=["emu", "cat"], shuffle=False)
    assert index.class_names == ["emu", "cat"]
    assert set(index.labels[:4].tolist()) == {0}
    ds = keras_dataset(folder, class_names=["emu", "cat"], shuffle=False, image_size=(4, 4))
    assert index.paths == ds.file_paths


# ---------------------------------------------------------------- bad folders


def test_corrupt_files_are_reported_skipped_and_counted(folder, tmp_path, capsys):
    bad = write_image_folder(tmp_path / "bad")
    (bad / "cat" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    good_png = (bad / "dog" / "b.png").read_bytes()
    (bad / "dog" / "b.png").write_bytes(good_png[: len(good_png) // 2])  # truncated
    settings = ImageSettings((8, 8), validation_split=0.25, seed=3)
    (train, val), _ = open_image_folder(
        bad, settings, "image", (8, 8, 3), subsets=("training", "validation")
    )
    skipped = sorted(p for ds in (train, val) for p, _ in ds.skipped)
    assert skipped == [str(bad / "cat" / "a.png"), str(bad / "dog" / "b.png")]
    assert train.size + val.size == 11
    assert not {p for p, _ in train.skipped + val.skipped} & set(train.paths + val.paths)
    err = capsys.readouterr().err
    assert f"data: skipped {bad / 'cat' / 'a.png'}: cannot read it" in err


def test_a_folder_that_fits_in_memory_is_decoded_once_when_opened(tmp_path):
    """Decoding is the check: a file broken after the folder was opened is not read
    again, and every batch is a gather from the decoded images."""
    folder = write_image_folder(tmp_path / "f")
    settings = ImageSettings((4, 4), shuffle=False)
    (dataset,), _ = open_image_folder(folder, settings, "x", (4, 4, 3), "target:y", (), np.int64)
    assert dataset.cached is not None and dataset.cached.all()
    expected = np.stack([read_image(p, 3, (4, 4), "bilinear") for p in dataset.paths[:5]])
    with open(dataset.paths[2], "wb") as f:
        f.write(b"garbage")
    batch = dataset.take(np.arange(5))
    np.testing.assert_array_equal(batch["x"], expected)
    assert dataset.skipped == []


def test_a_file_that_fails_to_decode_leaves_its_batch(tmp_path, capsys, monkeypatch):
    """A folder too large to keep decoded is checked with Image.verify and decoded batch
    by batch: a file that fails then is dropped from its batch."""
    monkeypatch.setattr(image_folder, "CACHE_BYTES", 0)
    folder = write_image_folder(tmp_path / "f")
    settings = ImageSettings((4, 4), shuffle=False)
    (dataset,), _ = open_image_folder(folder, settings, "x", (4, 4, 3), "target:y", (), np.int64)
    victim = dataset.paths[2]
    with open(victim, "wb") as f:  # broken after the folder was checked
        f.write(b"garbage")
    batch = dataset.take(np.arange(5))
    assert len(batch["x"]) == len(batch["target:y"]) == 4
    np.testing.assert_array_equal(batch["target:y"], dataset.labels[[0, 1, 3, 4]])
    assert [p for p, _ in dataset.skipped] == [victim]
    assert f"data: skipped {victim}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("empty_class", "the class folder 'emu' holds no image"),
        ("no_classes", "no class folders; an image folder holds one subfolder per class"),
        ("missing", "no such folder of images"),
    ],
)
def test_bad_folders_are_clear_errors(tmp_path, change, message):
    folder = write_image_folder(tmp_path / "f")
    if change == "empty_class":
        for f in sorted((folder / "emu").rglob("*"), reverse=True):
            f.unlink()
        (folder / "emu" / "readme.txt").write_text("no images here")
    elif change == "no_classes":
        folder = tmp_path / "flat"
        folder.mkdir()
        (folder / "a.png").write_bytes(b"")
    else:
        folder = tmp_path / "nowhere"
    with pytest.raises(DataError, match=message):
        open_image_folder(folder, ImageSettings((4, 4), seed=1), "x", (4, 4, 3))


def test_image_size_that_does_not_fit_the_input(folder):
    with pytest.raises(DataError) as e:
        open_image_folder(folder, ImageSettings((28, 28), "grayscale"), "image", (8, 8, 1))
    assert "image_size (28, 28)" in str(e.value)
    assert "the input 'image' takes (8, 8, 1)" in str(e.value)


def test_classes_must_fit_the_output(folder):
    with pytest.raises(DataError, match="holds 3 classes but the output has 10 units"):
        open_image_folder(
            folder, ImageSettings((4, 4), seed=1), "x", (4, 4, 3), "target:y", (10,), np.float32
        )
    with pytest.raises(DataError, match="label_mode 'int' does not fit"):
        open_image_folder(
            folder,
            ImageSettings((4, 4), seed=1),
            "x",
            (4, 4, 3),
            "target:y",
            (3,),
            np.float32,
            label_mode="int",
        )
