"""Image folders, read as Keras 3's `image_dataset_from_directory` reads them.

    digits/
        0/ a.png b.png ...
        1/ ...

- Classes are the subfolders (not starting with "."), sorted; `class_names` picks and
  orders a subset. The files of a class are found by walking its folder (sorted by
  folder, then by name; links followed with `follow_links`), keeping .bmp .gif .jpeg
  .jpg .png in any case.
- With `shuffle` (Keras's default) the file list is shuffled once with
  `numpy.random.RandomState(seed).shuffle`, then `validation_split` takes the last
  `int(validation_split * n)` files for the "validation" subset and the rest for
  "training": the same files as Keras for the same seed.
- Each image is read with Pillow and converted as Keras converts it (grayscale: mode
  "L" unless already "L", "I;16" or "I"; rgb: "RGB"; rgba: "RGBA"), turned into float32
  pixel values as stored (0..255 for 8-bit images: no scaling) and resized to
  `image_size` with Keras's interpolation (image_resize.py).
- Labels: class ids (int), one-hot rows (categorical) or 0/1 in a column (binary), as
  the model's target wants them.

Unlike Keras, a file that Pillow cannot read is not fatal and never trained on: it is
reported by path and skipped, and the dataset counts it (`skipped`); when the folder is
opened one line gives the count ("data: 2 of 539 files skipped (unreadable)"). Files are
checked when the folder is opened (decoded, or for a folder too large to keep decoded,
`Image.verify`, which reads every chunk of a PNG); a file that fails only when it is
decoded is dropped from its batch (the batch is one row shorter) and counted then. An
empty class folder, a folder without class folders and an
`image_size` that does not fit the model's input are errors.

A folder whose decoded images fit in CACHE_BYTES (256 MiB) is decoded once when it is
opened, which is also its check, and kept, as `tf.data`'s `cache()` would keep it: every
epoch reads memory. A larger one is checked with `Image.verify`, and each batch decodes
its files (on the prefetch thread). Pillow is imported only when images are read.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data_errors import DataError
from .files import special_kind
from .image_resize import INTERPOLATIONS, resize

FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
CACHE_BYTES = 256 << 20  # decoded images are kept when all of a subset fit in this
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
SUBSETS = ("training", "validation")


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading images needs Pillow: pip install Pillow") from None
    return Image


# ---------------------------------------------------------------- finding the files


def class_folders(directory: Path, class_names: list[str] | None) -> list[str]:
    """The class names: subfolders in sorted order, or `class_names` (checked)."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no such folder of images")
    found = sorted(
        entry.name
        for entry in os.scandir(directory)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if not found:
        raise DataError(
            f"{directory}: no class folders; an image folder holds one subfolder per "
            "class (digits/0/*.png, digits/1/*.png, ...)"
        )
    if class_names is None:
        return found
    missing = [name for name in class_names if name not in found]
    if missing:
        raise DataError(
            f"{directory}: class_names names {missing[0]!r}, which is not a subfolder; "
            f"the subfolders are {', '.join(found)}"
        )
    return list(class_names)


def class_files(folder: Path, follow_links: bool) -> list[str]:
    """The image files under one class folder, in Keras's order."""
    files = []
    for root, _, names in sorted(os.walk(folder, followlinks=follow_links), key=lambda w: w[0]):
        files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(FORMATS)]
    return files


@dataclass
class FolderIndex:
    """The files of an image folder in Keras's order, with their class ids."""

    directory: Path
    class_names: list[str]
    paths: list[str]
    labels: np.ndarray  # int32


def index_folder(
    directory: str | Path,
    class_names: list[str] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    follow_links: bool = False,
) -> FolderIndex:
    """Every image file of the folder with its class, shuffled as Keras shuffles them."""
    directory = Path(directory)
    names = class_folders(directory, class_names)
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        files = class_files(directory / name, follow_links)
        if not files:
            raise DataError(
                f"{directory / name}: the class folder '{name}' holds no image "
                f"({' '.join(FORMATS)})"
            )
        paths += files
        labels += [label] * len(files)
    order = np.arange(len(paths))
    if shuffle:
        if seed is None:
            raise DataError("image folders are shuffled with a seed: give one (seed = 1337)")
        np.random.RandomState(seed).shuffle(order)
    return FolderIndex(
        directory, names, [paths[i] for i in order], np.asarray(labels, np.int32)[order]
    )


def subset_rows(count: int, validation_split: float | None, subset: str | None) -> slice:
    """The rows of `subset` ("training", "validation" or None: all) as Keras splits."""
    if not validation_split or subset is None:
        return slice(0, count)
    if subset not in SUBSETS:
        raise DataError(f"subset {subset!r}: expected 'training' or 'validation'")
    held_out = int(validation_split * count)
    if held_out == 0 or held_out == count:
        raise DataError(
            f"validation_split {validation_split} of {count} files leaves no "
            f"{'validation' if held_out == 0 else 'training'} files"
        )
    return slice(count - held_out, count) if subset == "validation" else slice(0, count - held_out)


# ---------------------------------------------------------------- reading one image


def read_image(path: str, channels: int, size: tuple[int, int], interpolation: str):
    """One image as float32 (height, width, channels), converted and resized as Keras."""
    image_module = _pillow()
    with image_module.open(path) as image:
        if channels == 1:
            if image.mode not in ("L", "I;16", "I"):
                image = image.convert("L")
        elif image.mode != {3: "RGB", 4: "RGBA"}[channels]:
            image = image.convert({3: "RGB", 4: "RGBA"}[channels])
        pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return resize(pixels, size, interpolation)


def unreadable(path: str) -> str | None:
    """Why Pillow cannot read `path` (its header and chunks), or None if it can. A FIFO
    or a device under an image's name is never opened (it would block or never end)."""
    kind = special_kind(path)
    if kind:
        return f"it is {kind}, not a file"
    image_module = _pillow()
    try:
        with image_module.open(path) as image:
            image.verify()
    except Exception as e:  # Pillow raises many types for bad files
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


# ---------------------------------------------------------------- the dataset


@dataclass
class ImageSettings:
    """image_dataset_from_directory's arguments that ktrans takes."""

    image_size: tuple[int, int]
    color_mode: str = "rgb"
    interpolation: str = "bilinear"
    class_names: list[str] | None = None
    validation_split: float | None = None
    seed: int | None = None
    shuffle: bool = True
    follow_links: bool = False

    def check(self) -> None:
        height, width = self.image_size
        if height < 1 or width < 1:
            raise DataError(f"image_size {self.image_size}: expected two positive integers")
        if self.color_mode not in CHANNELS:
            raise DataError(f"color_mode {self.color_mode!r}: expected one of {list(CHANNELS)}")
        if self.interpolation not in INTERPOLATIONS:
            raise DataError(
                f"interpolation {self.interpolation!r}: ktrans resizes with one of "
                f"{list(INTERPOLATIONS)}"
            )
        split = self.validation_split
        if split is not None and not 0 < split < 1:
            raise DataError(f"validation_split {split}: expected a number in (0, 1)")


@dataclass
class ImageFolderDataset:
    """A subset of an image folder as a training dataset: `take(rows)` reads, converts
    and resizes the batch's files and returns {input: images, target: labels}."""

    paths: list[str]
    labels: np.ndarray
    settings: ImageSettings
    input_name: str
    target_name: str | None
    label_format: str  # "int", "categorical" or "binary"
    classes: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # the decoded images by row, when the subset fits CACHE_BYTES, and which rows it holds
    cache: np.ndarray | None = None
    cached: np.ndarray | None = None

    def __post_init__(self) -> None:
        height, width = self.settings.image_size
        channels = CHANNELS[self.settings.color_mode]
        if self.cache is None and self.size * height * width * channels * 4 <= CACHE_BYTES:
            # like tf.data's cache(): files are decoded in the first epoch; a batch whose
            # rows are all decoded is then one gather, as from an array in memory
            self.cache = np.empty((self.size, height, width, channels), np.float32)
            self.cached = np.zeros(self.size, bool)

    @property
    def size(self) -> int:
        return len(self.paths)

    def images(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """(images, kept): the batch's images, and which rows could be decoded."""
        settings = self.settings
        channels = CHANNELS[settings.color_mode]
        height, width = settings.image_size
        rows = np.arange(self.size)[rows] if isinstance(rows, slice) else np.asarray(rows)
        cache = self.cache
        if cache is not None and self.cached[rows].all():
            return cache[rows], rows
        out = np.empty((len(rows), height, width, channels), np.float32)
        kept = np.ones(len(rows), bool)
        for i, row in enumerate(rows):
            if cache is not None and self.cached[row]:
                out[i] = cache[row]
                continue
            path = self.paths[row]
            try:
                out[i] = read_image(path, channels, settings.image_size, settings.interpolation)
            except (OSError, ValueError, SyntaxError) as e:  # Pillow's decoding errors
                kept[i] = False
                self.skip(path, str(e).splitlines()[0] if str(e) else type(e).__name__)
                continue
            if cache is not None:
                cache[row] = out[i]
                self.cached[row] = True
        return out[kept], rows[kept]

    def skip(self, path: str, reason: str) -> None:
        if any(p == path for p, _ in self.skipped):
            return
        self.skipped.append((path, reason))
        print(f"data: skipped {path}: cannot read it ({reason})", file=sys.stderr)

    def take(self, rows) -> dict[str, np.ndarray]:
        images, kept = self.images(rows)
        batch = {self.input_name: images}
        if self.target_name is not None:
            batch[self.target_name] = encode_labels(
                self.labels[kept], self.label_format, self.classes
            )
        return batch


def encode_labels(labels: np.ndarray, label_format: str, classes: int) -> np.ndarray:
    """Class ids as Keras's label_mode gives them: int64 ids (ktrans's sparse targets),
    float32 one-hot rows, or float32 (n, 1) zeros and ones."""
    if label_format == "int":
        return labels.astype(np.int64)
    if label_format == "categorical":
        return np.eye(classes, dtype=np.float32)[labels]
    return labels.astype(np.float32)[:, None]


def label_format_for(shape: tuple, dtype, classes: int, where: str) -> str:
    """Which label encoding a target of `shape` (without the batch axis) and `dtype`
    wants, given the folder's number of classes."""
    units = shape[-1] if shape else None
    if np.issubdtype(dtype, np.integer):
        fmt = "int"
    elif units == 1:
        fmt = "binary"
    else:
        fmt = "categorical"
    if fmt == "binary" and classes != 2:
        raise DataError(
            f"{where}: the output has one unit (binary labels), so the folder must hold "
            f"2 classes; it holds {classes}"
        )
    if fmt == "categorical" and units != classes:
        raise DataError(
            f"{where}: the folder holds {classes} classes but the output has {units} units "
            "(one per class)"
        )
    return fmt


def open_image_folder(
    directory: str | Path,
    settings: ImageSettings,
    input_name: str,
    input_shape: tuple,
    target_name: str | None = None,
    target_shape: tuple = (),
    target_dtype=np.int64,
    label_mode: str | None = None,
    subsets: tuple = (None,),
) -> tuple[list[ImageFolderDataset], FolderIndex]:
    """The datasets of `subsets` ("training", "validation", None: all files) of the
    folder, for a model whose input `input_name` is shaped `input_shape` (height, width,
    channels) and whose target `target_name` is shaped and typed as given; and the
    folder's index (class names, files)."""
    settings.check()
    channels = CHANNELS[settings.color_mode]
    want = (*settings.image_size, channels)
    if tuple(input_shape) != want:
        shown = tuple(d if isinstance(d, int) else None for d in input_shape)
        raise DataError(
            f"{directory}: images of image_size {tuple(settings.image_size)} with "
            f"color_mode {settings.color_mode!r} are shaped {want}, but the input "
            f"'{input_name}' takes {shown}"
        )
    index = index_folder(
        directory, settings.class_names, settings.shuffle, settings.seed, settings.follow_links
    )
    classes = len(index.class_names)
    label_format = "int"
    if target_name is not None:
        label_format = label_format_for(
            tuple(target_shape), target_dtype, classes, f"{directory}: target '{target_name}'"
        )
        wanted = {"int": "int", "categorical": "categorical", "binary": "binary"}[label_format]
        if label_mode is not None and label_mode != wanted:
            raise DataError(
                f"label_mode {label_mode!r} does not fit the loss of '{target_name}', "
                f"which takes {wanted} labels"
            )
    decoded, bad = check_files(index.paths, settings)
    readable = np.ones(len(index.paths), bool)
    readable[list(bad)] = False
    datasets = []
    for subset in subsets:
        rows = subset_rows(len(index.paths), settings.validation_split, subset)
        keep = np.flatnonzero(readable[rows]) + rows.start
        datasets.append(
            ImageFolderDataset(
                [index.paths[i] for i in keep],
                index.labels[keep],
                settings,
                input_name,
                target_name,
                label_format,
                classes,
                [(index.paths[i], why) for i, why in bad.items() if rows.start <= i < rows.stop],
                None if decoded is None else decoded[keep],
                None if decoded is None else np.ones(len(keep), bool),
            )
        )
    return datasets, index


def check_files(paths: list[str], settings: ImageSettings):
    """(decoded, bad): every file read once when the folder is opened, so that no file
    Pillow cannot read is ever trained on; bad = {row: why}. When all the decoded
    images fit in CACHE_BYTES the check is the decoding itself and `decoded` holds the
    images by row (the first epoch then reads memory, as later ones do); otherwise the
    check is `Image.verify` (header and chunks) and `decoded` is None. Each unreadable
    file is a line on stderr, and their count one more."""
    height, width = settings.image_size
    channels = CHANNELS[settings.color_mode]
    fits = len(paths) * height * width * channels * 4 <= CACHE_BYTES
    decoded = np.empty((len(paths), height, width, channels), np.float32) if fits else None
    bad: dict[int, str] = {}
    for i, path in enumerate(paths):
        reason = unreadable(path) if decoded is None else _decode_into(decoded, i, path, settings)
        if reason is not None:
            bad[i] = reason
            print(f"data: skipped {path}: cannot read it ({reason})", file=sys.stderr)
    if bad:
        print(f"data: {len(bad)} of {len(paths)} files skipped (unreadable)", file=sys.stderr)
    return decoded, bad


def _decode_into(decoded: np.ndarray, row: int, path: str, settings: ImageSettings):
    """Decodes `path` into decoded[row]; why it cannot be read, or None."""
    kind = special_kind(path)
    if kind:
        return f"it is {kind}, not a file"
    channels = CHANNELS[settings.color_mode]
    try:
        decoded[row] = read_image(path, channels, settings.image_size, settings.interpolation)
    except Exception as e:  # Pillow raises many types for bad files
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None
