"""`--data` of every kind except .npz: an image folder, a CSV table, a directory of .npy
files. The integration point of the loop:

    kind = data_kind(path)                       # "npz", "images", "csv" or "npy"
    feeds = feeds_of(session.get_inputs(), model_inputs, trained_outputs)
    opened = open_data(path, feeds, settings, seed=run_seed)
    opened.train, opened.val, opened.test        # datasets (size, take(rows)); val/test may be None
    write_data_info(out_dir, opened.info)        # data.json: class names, vocabularies, skipped

`settings` is the train block's `data { }` section as a dict (the `DATA` setting of the
bundle) with the command line's data flags laid over it (`apply_flags`). `.npz` stays
with the runtime's own reader (data.py).

Settings (docs/training.md, "Data"): image folders take image_size, color_mode,
label_mode, interpolation, class_names, validation_split, subset, seed, shuffle,
follow_links, as Keras's `image_dataset_from_directory`; CSV tables take columns,
categorical, delimiter. image_size and color_mode default to the model's input (height,
width, channels); the folder's split `seed` defaults to the run's seed. The run's
validation split (`--validation-split`, else the train block's) splits an image folder's
files as its data section's `validation_split` would (`with_run_split`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .csv_table import CsvSettings, open_csv
from .data_errors import DataError
from .feeds import Feed
from .files import special_kind, write_json
from .image_folder import CHANNELS, ImageSettings, open_image_folder
from .npy_dir import open_npy_dir

IMAGE_KEYS = (
    "image_size",
    "color_mode",
    "label_mode",
    "interpolation",
    "class_names",
    "validation_split",
    "subset",
    "seed",
    "shuffle",
    "follow_links",
)
CSV_KEYS = ("columns", "categorical", "delimiter")
DATA_KEYS = IMAGE_KEYS + CSV_KEYS
NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
INFO_FILE = "data.json"


def data_kind(path: str | Path) -> str:
    """ "npz", "images", "csv" or "npy", from what `path` is."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"--data: no such file or folder {path}")
    kind = special_kind(path)
    if kind:
        raise DataError(f"--data: {path} is {kind}, neither a file nor a folder")
    if path.is_dir():
        return "npy" if any(path.glob("*.npy")) else "images"
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return "csv"
    if path.suffix.lower() == ".npz":
        return "npz"
    raise DataError(
        f"--data {path}: expected an .npz file, a .csv table, a folder of images (one "
        "subfolder per class) or a folder of .npy files"
    )


def feeds_of(infos, inputs: list[str], targets: dict[str, str]) -> list[Feed]:
    """The feeds of a step or evaluation model: `infos` are its onnxruntime input
    descriptions (name, shape with the batch axis first, type), `inputs` the model's
    input names, `targets` {output: target input name}."""
    by_name = {info.name: info for info in infos}
    keys = {name: name for name in inputs} | {t: o for o, t in targets.items()}
    feeds = []
    for name, key in keys.items():
        info = by_name[name]
        shape = tuple(d if isinstance(d, int) else None for d in info.shape[1:])
        feeds.append(Feed(name, key, shape, NUMPY_TYPES[info.type]))
    return feeds


def apply_flags(settings: dict, flags: dict) -> dict:
    """The data section with the command line's data flags (those not None) over it."""
    out = dict(settings or {})
    out.update({k: v for k, v in flags.items() if v is not None})
    return out


def with_run_split(settings: dict, split: float, given: bool) -> dict:
    """An image folder's data section with the run's validation split (`split`): given
    on the command line (`--validation-split`, or recorded by the checkpoint of a resumed
    run: `given`), it is the section's validation_split, over the section's own (0: no
    split, and no subset); the train block's validation_split (not given) applies when
    the section has none. The files are then split as Keras's image_dataset_from_directory
    splits them with that validation_split, subset and seed (the section's, else the
    run's)."""
    if not given and settings.get("validation_split"):
        return dict(settings)
    out = {k: v for k, v in settings.items() if k != "validation_split"}
    if split:
        out["validation_split"] = split
    elif given:
        out.pop("subset", None)
    return out


@dataclass
class DataInfo:
    """What the run keeps about its data (data.json): for evaluate and predict."""

    kind: str
    path: str
    settings: dict = field(default_factory=dict)  # as used: defaults filled in
    class_names: dict[str, list[str]] = field(default_factory=dict)  # output -> names
    vocabularies: dict[str, list[str]] = field(default_factory=dict)  # CSV column -> values
    skipped: list[list[str]] = field(default_factory=list)  # [path, why]
    rows: dict[str, int] = field(default_factory=dict)  # split -> rows


@dataclass
class OpenedData:
    train: object
    val: object | None
    test: object | None
    info: DataInfo


# ---------------------------------------------------------------- image folders


def image_settings(settings: dict, feed: Feed, seed: int, source="--data") -> ImageSettings:
    """ImageSettings from the data section; image_size and color_mode default to the
    model's input. `source`: the folder or file read, for messages."""
    shape = tuple(feed.shape)
    if len(shape) != 3 or not all(isinstance(d, int) for d in shape):
        raise DataError(
            f"{source}: images feed an input shaped (height, width, channels), but "
            f"{feed.describe()} takes {feed.wants()}"
        )
    modes = {c: m for m, c in CHANNELS.items()}
    if "color_mode" not in settings and shape[2] not in modes:
        raise DataError(f"{feed.describe()} has {shape[2]} channels: images have 1, 3 or 4")
    size = settings.get("image_size", shape[:2])
    size = (size, size) if isinstance(size, int) else tuple(size)
    return ImageSettings(
        image_size=size,
        color_mode=settings.get("color_mode", modes.get(shape[2], "rgb")),
        interpolation=settings.get("interpolation", "bilinear"),
        class_names=settings.get("class_names"),
        validation_split=settings.get("validation_split") or None,
        seed=settings.get("seed", seed),
        shuffle=settings.get("shuffle", True),
        follow_links=settings.get("follow_links", False),
    )


def _image_feeds(feeds: list[Feed], path) -> tuple[Feed, Feed | None]:
    inputs = [f for f in feeds if not f.is_target]
    targets = [f for f in feeds if f.is_target]
    if len(inputs) != 1 or len(targets) > 1:
        raise DataError(
            f"{path}: an image folder feeds a model with one image input and one trained "
            f"output; this one has inputs {', '.join(f.key for f in inputs)} and trains "
            f"{', '.join(f.key for f in targets) or 'nothing'}"
        )
    return inputs[0], (targets[0] if targets else None)


def open_images(path, feeds: list[Feed], settings: dict, seed: int, subsets) -> tuple:
    image, target = _image_feeds(feeds, path)
    chosen = image_settings(settings, image, seed, path)
    datasets, index = open_image_folder(
        path,
        chosen,
        image.name,
        image.shape,
        target.name if target else None,
        target.shape if target else (),
        target.dtype if target else np.int64,
        settings.get("label_mode"),
        subsets,
    )
    used = {**asdict(chosen), "image_size": list(chosen.image_size)}
    if settings.get("label_mode"):
        used["label_mode"] = settings["label_mode"]
    info = DataInfo(
        "images",
        str(path),
        used,
        {target.key: index.class_names} if target else {"": index.class_names},
        skipped=[[p, why] for ds in datasets for p, why in ds.skipped],
    )
    return datasets, info


def training_subsets(settings: dict) -> tuple:
    subset = settings.get("subset")
    if not settings.get("validation_split"):
        if subset:
            raise DataError(f"subset {subset!r} needs a validation_split")
        return (None,)
    if subset in (None, "both"):
        return ("training", "validation")
    if subset == "training":
        return ("training",)
    raise DataError(f"subset {subset!r}: training uses 'training' or 'both'")


# ---------------------------------------------------------------- every kind


def csv_settings(settings: dict) -> CsvSettings:
    return CsvSettings(
        dict(settings.get("columns") or {}),
        list(settings.get("categorical") or []),
        settings.get("delimiter", ","),
    )


def open_data(
    path, feeds: list[Feed], settings: dict | None = None, seed: int = 0, run_split=None
) -> OpenedData:
    """The training, validation and test data at `path` (not .npz) for `feeds`.
    `run_split`, (split, given) as `with_run_split` takes them, is the run's validation
    split: it splits an image folder's files (other data is split by the loop)."""
    settings = dict(settings or {})
    kind = data_kind(path)
    if kind == "images":
        if run_split is not None:
            settings = with_run_split(settings, *run_split)
        datasets, info = open_images(path, feeds, settings, seed, training_subsets(settings))
        train, val = datasets[0], (datasets[1] if len(datasets) > 1 else None)
        info.rows = {"train": train.size, "val": val.size if val else 0}
        return OpenedData(train, val, None, info)
    unused = [k for k in settings if k in IMAGE_KEYS]
    if unused:
        raise DataError(f"{path}: '{unused[0]}' applies to image folders, and this is {kind}")
    if kind == "csv":
        table = open_csv(path, feeds, csv_settings(settings))
        used = {"columns": table.columns, **asdict(csv_settings(settings))}
        used["columns"] = {f.key: table.columns[f.name] for f in feeds}
        info = DataInfo("csv", str(path), used, table.class_names, table.vocabularies)
        info.rows = {"train": table.dataset.size}
        return OpenedData(table.dataset, None, None, info)
    if kind == "npy":
        csv_only = [k for k in settings if k in CSV_KEYS]
        if csv_only:
            raise DataError(f"{path}: '{csv_only[0]}' applies to CSV tables")
        splits = open_npy_dir(path, feeds)
        info = DataInfo("npy", str(path))
        info.rows = {k: v.size for k, v in splits.items() if v is not None}
        return OpenedData(splits["train"], splits["val"], splits["test"], info)
    raise DataError(f"{path}: .npz files are read by the runtime's npz reader")


def open_eval_data(path, feeds: list[Feed], info: DataInfo | None, subset: str | None):
    """(dataset, what it is) to evaluate or predict on: an image folder (the run's
    settings; `subset` "training"/"validation", or the run's validation subset when it
    split its folder, else every file), a CSV table (the run's columns and
    vocabularies), a .npy directory (its test arrays, else its training arrays)."""
    kind = data_kind(path)
    run = dict(info.settings) if info else {}
    if kind == "images":
        run.pop("label_mode", None)
        if subset is None and run.get("validation_split"):
            subset = "validation"
        if subset is None:
            run["validation_split"] = None
        (dataset,), opened = open_images(path, feeds, run, run.get("seed") or 0, (subset,))
        if info and info.class_names and opened.class_names != info.class_names:
            (found,), (trained,) = opened.class_names.values(), info.class_names.values()
            raise DataError(f"{path}: its classes {found} are not the training data's {trained}")
        what = f"the {subset} subset" if subset else "every file"
        return dataset, f"{what} of {path} ({dataset.size} images)"
    if kind == "csv":
        vocabs = info.vocabularies if info else None
        keep = {k: run[k] for k in CSV_KEYS if k in run}
        table = open_csv(path, feeds, csv_settings(keep), vocabs)
        return table.dataset, f"{path} ({table.dataset.size} rows)"
    if kind == "npy":
        splits = open_npy_dir(path, feeds)
        split = "test" if splits["test"] is not None else "train"
        return splits[split], f"the {split} arrays of {path} ({splits[split].size} rows)"
    raise DataError(f"{path}: .npz files are read by the runtime's npz reader")


# ---------------------------------------------------------------- data.json


def write_data_info(out_dir: str | Path, info: DataInfo) -> Path:
    """Writes data.json into the run folder (atomically)."""
    return write_json(Path(out_dir) / INFO_FILE, asdict(info))


def read_data_info(run_dir: str | Path) -> DataInfo | None:
    """The run's data.json, or None if it has none."""
    path = Path(run_dir) / INFO_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
        return DataInfo(**values)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: not a ktrans data.json ({e})") from None
