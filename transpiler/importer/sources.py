"""Reading a Keras model file without Keras: its config (JSON) and where its weights are.

- `.keras` (Keras 3): a zip archive with config.json, metadata.json and model.weights.h5.
  The central directory is checked before anything is read: member names (no absolute
  paths, no `..`, no backslashes), member sizes (config.json at most CONFIG_LIMIT, the
  weights no larger than the archive holds, or than MAX_RATIO times their compressed size),
  and each read is bounded again while it happens. Nothing is extracted to disk: a stored
  (uncompressed) weights file, what Keras writes, is read in place through a window on the
  archive; a compressed one is inflated into memory within its bound.
- `.h5` / `.hdf5`: a whole model saved by Keras 2, tf.keras or Keras 3's legacy format:
  the `model_config` attribute (and `training_config`), weights under `model_weights`.
- `.json`: `model.to_json()` or `model.get_config()`; no weights.

HDF5 files are opened read-only and checked by transpiler.importer.h5safe before any
dataset is read.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from transpiler.importer.errors import fail

CONFIG_LIMIT = 64 * 2**20  # config.json / model_config: 64 MiB
METADATA_LIMIT = 2**20
MAX_MEMBERS = 64
MAX_RATIO = 64  # a compressed member may inflate at most this much
KNOWN_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
JSON_DEPTH = 200  # nesting deeper than any Keras config


@dataclass
class KerasFile:
    """What a Keras file holds: the model config (`{"class_name": ..., "config": ...}`),
    the compile config (or None), the Keras version that saved it, and a way to open the
    weights (None for a JSON config)."""

    path: Path
    kind: str  # "keras", "h5" or "json"
    config: dict
    compile_config: dict | None = None
    keras_version: str | None = None
    open_weights: Callable | None = field(default=None, repr=False)


def read_keras_file(path: str | Path) -> KerasFile:
    path = Path(path)
    name = path.name
    if not path.is_file():
        fail(name, f"no such file: {path}")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic[:4] == b"PK\x03\x04" or path.suffix == ".keras":
        return _read_archive(path)
    if magic == b"\x89HDF\r\n\x1a\n" or path.suffix in (".h5", ".hdf5"):
        return _read_h5_model(path)
    if path.suffix == ".json" or magic.lstrip()[:1] == b"{":
        return _read_json_file(path)
    fail(
        name,
        "not a Keras model file",
        "pass a .keras archive (model.save('m.keras')), a whole-model .h5, or the JSON of "
        "model.to_json()",
    )


# ---------------------------------------------------------------- JSON


def parse_json(text: bytes | str, where: str) -> object:
    try:
        value = json.loads(text)
    except RecursionError:
        fail(where, "the JSON is nested too deeply to be a Keras config")
    except (ValueError, UnicodeDecodeError) as e:
        fail(where, f"not valid JSON: {e}")
    if _depth(value) > JSON_DEPTH:
        fail(where, "the JSON is nested too deeply to be a Keras config")
    return value


def _depth(value, limit: int = JSON_DEPTH + 1) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def model_config(value, where: str) -> dict:
    """`{"class_name", "config"}` from to_json(), a saved config, or get_config()."""
    if not isinstance(value, dict):
        fail(where, "the config is not a JSON object")
    if "class_name" in value and isinstance(value.get("config"), dict):
        return value
    if isinstance(value.get("layers"), list):
        cls = "Functional" if "input_layers" in value else "Sequential"
        return {"class_name": cls, "config": value}
    fail(
        where,
        "no Keras model config here (no class_name/config, no layers)",
        "pass the JSON of model.to_json() or of model.get_config()",
    )


def _read_json_file(path: Path) -> KerasFile:
    size = path.stat().st_size
    if size > CONFIG_LIMIT:
        fail(path.name, f"the JSON is {size:,} bytes; a Keras config is at most {CONFIG_LIMIT:,}")
    value = parse_json(path.read_bytes(), path.name)
    config = model_config(value, path.name)
    version = value.get("keras_version") if isinstance(value, dict) else None
    return KerasFile(path, "json", config, keras_version=_text_or_none(version))


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) and len(value) < 40 else None


# ---------------------------------------------------------------- .keras archives


def _safe_member(name: str) -> bool:
    parts = name.split("/")
    return (
        bool(name)
        and not name.startswith("/")
        and "\\" not in name
        and "\x00" not in name
        and ".." not in parts
        and ":" not in parts[0]
    )


def _read_archive(path: Path) -> KerasFile:
    name = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        fail(name, f"not a readable .keras archive: {e}")
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            fail(name, f"the archive has {len(infos)} members; a .keras file has a handful")
        members: dict[str, zipfile.ZipInfo] = {}
        size = path.stat().st_size
        for info in infos:
            if not _safe_member(info.filename):
                fail(
                    name,
                    f"refusing the archive member {info.filename!r}: its path leaves the "
                    "archive (absolute, '..' or a drive)",
                    "a .keras file written by Keras has config.json, metadata.json and "
                    "model.weights.h5",
                )
            if info.compress_type == zipfile.ZIP_STORED and info.file_size > size:
                fail(name, f"archive member {info.filename} claims more bytes than the file has")
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) + 2**20:
                fail(name, f"archive member {info.filename} inflates too much to be Keras's")
            if info.filename in members:
                fail(name, f"the archive holds {info.filename} twice")
            members[info.filename] = info
        if "config.json" not in members:
            fail(name, "the archive has no config.json: not a Keras 3 .keras file")
        config_value = parse_json(
            _bounded_read(archive, members["config.json"], CONFIG_LIMIT, name), f"{name}"
        )
        version = None
        if "metadata.json" in members:
            meta = parse_json(
                _bounded_read(archive, members["metadata.json"], METADATA_LIMIT, name), name
            )
            if isinstance(meta, dict):
                version = _text_or_none(meta.get("keras_version"))
    config = model_config(config_value, name)
    compile_config = config_value.get("compile_config") if isinstance(config_value, dict) else None
    opener = None
    if "model.weights.h5" in members:
        info = members["model.weights.h5"]
        opener = _archive_weights_opener(path, info)
    return KerasFile(
        path,
        "keras",
        config,
        compile_config if isinstance(compile_config, dict) and compile_config else None,
        version,
        opener,
    )


def _bounded_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str):
    if info.file_size > limit:
        fail(name, f"{info.filename} is {info.file_size:,} bytes; at most {limit:,} are read")
    try:
        with archive.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError) as e:
        fail(name, f"cannot read {info.filename} from the archive: {e}")
    if len(data) > limit:
        fail(name, f"{info.filename} is larger than its header says")
    return data


class _Window(io.RawIOBase):
    """A read-only view of bytes [start, start + size) of an open file."""

    def __init__(self, f, start: int, size: int) -> None:
        super().__init__()
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(buffer)[:n]) or 0
        self._pos += got
        return got


def _archive_weights_opener(path: Path, info: zipfile.ZipInfo) -> Callable:
    @contextmanager
    def open_weights():
        from transpiler.importer.h5safe import open_h5

        where = f"{path.name}: model.weights.h5"
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb", buffering=0) as raw:
                raw.seek(info.header_offset)
                header = raw.read(30)
                if len(header) < 30 or header[:4] != b"PK\x03\x04":
                    fail(path.name, "the archive's local header for model.weights.h5 is broken")
                n, extra = struct.unpack("<HH", header[26:30])
                start = info.header_offset + 30 + n + extra
                with open_h5(_Window(raw, start, info.file_size), where, info.file_size) as f:
                    yield f
            return
        with zipfile.ZipFile(path) as archive:
            limit = MAX_RATIO * max(info.compress_size, 1) + 2**20
            data = _bounded_read(archive, info, limit, path.name)
        with open_h5(io.BytesIO(data), where, len(data)) as f:
            yield f

    return open_weights


# ---------------------------------------------------------------- whole-model .h5


def _read_h5_model(path: Path) -> KerasFile:
    from transpiler.importer.h5safe import open_h5, read_text_attr

    name = path.name
    size = path.stat().st_size
    with open_h5(path, name, size) as f:
        raw = read_text_attr(f, "model_config", CONFIG_LIMIT, name)
        if raw is None:
            hint = "this looks like a weights file: pass it to ktrans build --weights"
            fail(name, "the HDF5 file has no model_config: it holds no whole model", hint)
        config = model_config(parse_json(raw, f"{name}: model_config"), name)
        training = read_text_attr(f, "training_config", CONFIG_LIMIT, name)
        version = read_text_attr(f, "keras_version", 64, name)
    compile_config = None
    if training is not None:
        value = parse_json(training, f"{name}: training_config")
        compile_config = value if isinstance(value, dict) else None

    @contextmanager
    def open_weights():
        with open_h5(path, name, size) as f:
            yield f

    return KerasFile(path, "h5", config, compile_config, _text_or_none(version), open_weights)
