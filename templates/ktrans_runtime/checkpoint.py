"""The checkpoint: one .npz with the whole training state and where the run stands.

Members: `meta` (a JSON string: format, model, train block, engine fingerprint,
settings, position, history, metric state, callback states), `state/<name>` (the
engine's state: parameters, buffers, optimizer slots) and `callback<i>/<name>`
(callbacks' arrays, such as EarlyStopping's best weights). It is written atomically
(files.atomic_write).

`load` reads a checkpoint it can trust or says that it is damaged: every member's header
is checked (a float32 array of the expected shape, a bounded `meta`) before anything is
read, so a truncated, empty, random or foreign file is a one-line error, never a
traceback or a large allocation.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import TrainingError
from .files import save_npz

FORMAT = 3
META_LIMIT = 64 * 2**20  # characters of the meta JSON
META_KEYS = {
    "format": int,
    "model": str,
    "train_block": str,
    "fingerprint": str,
    "settings": dict,
    "epoch": int,
    "batch": int,
    "step": int,
    "lr": (int, float),
    "stop": bool,
    "finished": bool,
    "history": list,
    "averages": dict,
    "callbacks": list,
}
SETTINGS_KEYS = {"seed": int, "batch_size": int, "validation_split": (int, float)}


class DamagedCheckpoint(TrainingError):
    def __init__(self, path, reason: str) -> None:
        super().__init__(
            f"--resume: the checkpoint {path} is damaged ({reason}); it cannot be "
            "resumed. Start over without --resume (that replaces it), or restore a copy"
        )


def save(path: Path, meta: dict, state: dict, extra: dict | None = None) -> None:
    """Writes the checkpoint: `state` as state/<name>, `extra` arrays by their names."""
    arrays = {f"state/{name}": np.asarray(a, np.float32) for name, a in state.items()}
    arrays.update(extra or {})
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta}))
    save_npz(path, arrays)


def load(path: Path, model: str, shapes: dict[str, tuple]) -> tuple[dict, dict, dict]:
    """(meta, state, extra arrays) of the checkpoint at `path`, for `model` whose state
    holds `shapes` ({name: shape}); extra arrays must be shaped as some state entry."""
    path = Path(path)
    if not path.exists():
        raise TrainingError(f"--resume: there is no checkpoint {path}; run without --resume")
    if not path.is_file():
        raise TrainingError(f"--resume: {path} is not a file")
    try:
        with zipfile.ZipFile(path) as archive:
            headers = _headers(archive, path)
            _check_members(headers, shapes, path)
            meta = _read_meta(archive, path)
            arrays = {name: _read(archive, name, path) for name in headers if name != "meta"}
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DamagedCheckpoint(path, f"not a readable .npz archive: {e}") from None
    _check_meta(meta, path)
    if meta["model"] != model:
        raise TrainingError(
            f"--resume: {path} is a checkpoint of {meta['model']}, not of {model}; "
            "start over without --resume, or give --out the folder of this model's run"
        )
    if meta["format"] != FORMAT:
        raise TrainingError(
            f"--resume: {path} was written by another version of this script (format "
            f"{meta['format']}, this one reads {FORMAT}); start over without --resume"
        )
    state = {n[len("state/") :]: a for n, a in arrays.items() if n.startswith("state/")}
    extra = {n: a for n, a in arrays.items() if not n.startswith("state/")}
    return meta, state, extra


def _headers(archive: zipfile.ZipFile, path) -> dict[str, tuple]:
    """{array name: (dtype, shape)} from the members' .npy headers only."""
    headers = {}
    for member in archive.namelist():
        if not member.endswith(".npy"):
            raise DamagedCheckpoint(path, f"it holds {member!r}, which is not an array")
        with archive.open(member) as f:
            try:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(f)
            except (ValueError, EOFError) as e:
                raise DamagedCheckpoint(path, f"the array {member!r} is unreadable: {e}") from None
        headers[member[: -len(".npy")]] = (dtype, tuple(shape))
    return headers


def _check_members(headers: dict, shapes: dict[str, tuple], path) -> None:
    if "meta" not in headers:
        raise DamagedCheckpoint(path, "it has no 'meta' entry")
    dtype, shape = headers["meta"]
    if dtype.kind != "U" or shape != () or dtype.itemsize // 4 > META_LIMIT:
        raise DamagedCheckpoint(path, "its 'meta' entry is not a JSON string")
    allowed = {tuple(s) for s in shapes.values()}
    for name, (dtype, shape) in headers.items():
        if name == "meta":
            continue
        if dtype != np.float32:
            raise DamagedCheckpoint(path, f"'{name}' is {dtype}, not float32")
        if name.startswith("state/"):
            key = name[len("state/") :]
            if key not in shapes:
                raise DamagedCheckpoint(path, f"'{name}' is not part of this model's state")
            if shape != tuple(shapes[key]):
                raise DamagedCheckpoint(path, f"'{name}' is shaped {shape}, not {shapes[key]}")
        elif shape not in allowed:
            raise DamagedCheckpoint(path, f"'{name}' is shaped {shape}, like no weight")
    missing = [name for name in shapes if f"state/{name}" not in headers]
    if missing:
        raise DamagedCheckpoint(path, f"'state/{missing[0]}' is missing")


def _read(archive: zipfile.ZipFile, name: str, path) -> np.ndarray:
    with archive.open(f"{name}.npy") as f:
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise DamagedCheckpoint(path, f"'{name}' is unreadable: {e}") from None


def _read_meta(archive: zipfile.ZipFile, path) -> dict:
    text = str(_read(archive, "meta", path))
    try:
        meta = json.loads(text)
    except ValueError:
        raise DamagedCheckpoint(path, "its 'meta' entry is not valid JSON") from None
    if not isinstance(meta, dict):
        raise DamagedCheckpoint(path, "its 'meta' entry is not a JSON object")
    return meta


def _check_meta(meta: dict, path) -> None:
    for key, kind in META_KEYS.items():
        if key not in meta:
            raise DamagedCheckpoint(path, f"its meta has no '{key}'")
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise DamagedCheckpoint(path, f"its meta's '{key}' is not what a checkpoint holds")
    for key, kind in SETTINGS_KEYS.items():
        if not isinstance(meta["settings"].get(key), kind):
            raise DamagedCheckpoint(path, f"its meta's settings lack '{key}'")
    if min(meta["epoch"], meta["batch"], meta["step"]) < 0:
        raise DamagedCheckpoint(path, "its position is negative")
