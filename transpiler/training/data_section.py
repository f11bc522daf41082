"""The `data { }` section of a train block: how `--data` is read when it is an image folder
or a CSV table (an .npz or a .npy folder needs no settings).

    train DigitsCNN {
        loss = sparse_categorical_crossentropy
        data {
            image_size = (8, 8)          # image_dataset_from_directory's arguments
            color_mode = grayscale
            validation_split = 0.2
            seed = 1337
        }
    }

Keys and values follow Keras's `image_dataset_from_directory` for image folders; CSV
tables take `columns`, `categorical` and `delimiter`. Each value is converted here and
checked against the model (image_size and color_mode against its image input,
label_mode against the loss, columns against its inputs and outputs); the checked
section is `TrainConfig.data`, a dict of plain values that the bundle carries (its
`DATA` setting) and the runtime reads (ktrans_runtime.sources).
"""

from __future__ import annotations

from transpiler.layers.args import (
    ArgError,
    boolean,
    choice,
    describe,
    float_in,
    int_tuple,
    name_of,
    non_negative_int,
)
from transpiler.training.config import TrainError

KERAS_ONLY_INTERPOLATIONS = ("bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
SPARSE = "sparse_categorical_crossentropy"
CATEGORICAL = ("categorical_crossentropy", "categorical_focal_crossentropy")


def _names(value) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else None
    if items is None or not all(name_of(v) is not None for v in items):
        raise ArgError(f"expected a list of names or strings, got {describe(value)}")
    return [name_of(v) for v in items]


def _interpolation(value) -> str:
    n = name_of(value)
    if n is not None and n.lower() in KERAS_ONLY_INTERPOLATIONS:
        raise ArgError(f"'{n}' is not supported by ktrans", "use bilinear or nearest")
    return choice("bilinear", "nearest")(value)


def _columns(value) -> dict:
    if not isinstance(value, dict):
        raise ArgError(
            f"expected a dict of input or output names to columns, got {describe(value)}",
            'for example columns = { features: ["alcohol", "ash"], output: "cultivar" }',
        )
    out = {}
    for key, columns in value.items():
        if name_of(columns) is not None:
            out[key] = name_of(columns)
        else:
            try:
                out[key] = _names(columns)
            except ArgError as e:
                raise TrainError(f"columns: '{key}' {e.message}", path=(key,)) from None
    return out


def _delimiter(value) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise ArgError(f"expected one character, got {describe(value)}")
    return value


CONVERTERS = {
    "image_size": int_tuple(2),
    "color_mode": choice("grayscale", "rgb", "rgba"),
    "label_mode": choice("int", "categorical", "binary"),
    "interpolation": _interpolation,
    "class_names": _names,
    "validation_split": float_in(0, 1, lo_open=True, hi_open=True),
    "subset": choice("training", "both"),
    "seed": non_negative_int,
    "shuffle": boolean,
    "follow_links": boolean,
    "columns": _columns,
    "categorical": _names,
    "delimiter": _delimiter,
}
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def _image_input(graph):
    """The model's only input when it is an image (height, width, channels), else None."""
    if len(graph.inputs) != 1:
        return None
    value = graph.inputs[0]
    shape = value.type.shape[1:]
    return value if len(shape) == 3 else None


def check_against_model(data: dict, graph, losses: dict, fit_split: float) -> list[TrainError]:
    """Problems of the converted section against the model: TrainErrors whose path's first
    step is the offending key."""
    problems = []
    image = _image_input(graph)
    image_keys = [k for k in ("image_size", "color_mode") if k in data]
    if image_keys and image is None:
        names = ", ".join(v.name for v in graph.inputs)
        problems.append(
            TrainError(
                f"{image_keys[0]} is for an image folder, which feeds one input shaped "
                f"(height, width, channels); the model's inputs are {names}",
                path=(image_keys[0],),
            )
        )
    if image is not None:
        shape = tuple(d if isinstance(d, int) else None for d in image.type.shape[1:])
        if "image_size" in data and tuple(data["image_size"]) != shape[:2]:
            problems.append(
                TrainError(
                    f"image_size {tuple(data['image_size'])} does not fit the input "
                    f"'{image.name}', whose images are {shape[:2]} (height, width)",
                    f"image_size = {shape[:2]}, or change the input",
                    path=("image_size",),
                )
            )
        mode = data.get("color_mode")
        if mode is not None and CHANNELS[mode] != shape[2]:
            problems.append(
                TrainError(
                    f"color_mode {mode} gives {CHANNELS[mode]} channel(s); the input "
                    f"'{image.name}' takes {shape[2]}",
                    path=("color_mode",),
                )
            )
    label_mode = data.get("label_mode")
    if label_mode is not None and len(losses) == 1:
        ((output, loss),) = losses.items()
        units = graph.outputs[output].type.shape[-1]
        wanted = "int" if loss.name == SPARSE else "categorical"
        if loss.name not in (SPARSE, *CATEGORICAL) and units == 1:
            wanted = "binary"
        if label_mode != wanted:
            problems.append(
                TrainError(
                    f"label_mode {label_mode} does not fit the loss {loss.name} of "
                    f"'{output}', which takes {wanted} labels",
                    f"label_mode = {wanted}, or leave it out: it follows the loss",
                    path=("label_mode",),
                )
            )
    if "subset" in data and "validation_split" not in data:
        problems.append(TrainError("subset needs a validation_split", path=("subset",)))
    if "validation_split" in data and fit_split:
        problems.append(
            TrainError(
                "the train block has a validation_split too: say it once",
                "for an image folder, the data section's validation_split splits the files "
                "as Keras's image_dataset_from_directory does",
                path=("validation_split",),
            )
        )
    names = {v.name for v in graph.inputs} | set(graph.outputs)
    for key in data.get("columns", {}):
        if key not in names:
            problems.append(
                TrainError(
                    f"columns maps '{key}', which is not an input or output of "
                    f"{graph.name}; it has: {', '.join(sorted(names))}",
                    path=("columns", key),
                    at_name=True,
                )
            )
    return problems
