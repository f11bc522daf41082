"""Hostile and extreme inputs, each made in a fresh folder by a function that returns the
ktrans command line to run on it. Large inputs are generated here, never committed."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

MODEL = "model M {{\n    input x: float32[4]\n{body}\n}}\n"
DENSE = MODEL.format(body="    Dense(2)")


def kdl(tmp: Path, text: str, name: str = "m.kdl") -> str:
    (tmp / name).write_text(text)
    return name


# ---------------------------------------------------------------- expansion and numbers


def nested_repeat(tmp: Path) -> list[str]:
    body = "    repeat 100 { repeat 100 { repeat 100 { Dense(2) } } }"
    return ["check", kdl(tmp, MODEL.format(body=body))]


def block_fan_out(tmp: Path, layer: str = "Dense(2)") -> list[str]:
    blocks = [f"block B0() {{\n    input x\n    {layer}\n}}"]
    for i in range(1, 31):
        blocks.append(f"block B{i}() {{\n    input x\n    B{i - 1}()\n    B{i - 1}()\n}}")
    return ["check", kdl(tmp, "\n".join(blocks) + "\n" + MODEL.format(body="    B30()"))]


def empty_block_fan_out(tmp: Path) -> list[str]:
    return block_fan_out(tmp, layer="x")


def deepest_structure(tmp: Path) -> list[str]:
    """63 blocks, each calling the one before inside 190 nested ifs, the first one a
    190-deep expression: what the budgets allow at their deepest (~26,000 frames)."""
    ifs = "if true { " * 190, " }" * 190
    blocks = ["block B0() {\n    input x\n    y = " + "relu(" * 190 + "x" + ")" * 190 + "\n}"]
    for i in range(1, 63):
        blocks.append(f"block B{i}() {{\n    input x\n    {ifs[0]}B{i - 1}(){ifs[1]}\n}}")
    text = "\n".join(blocks) + "\n" + MODEL.format(body=f"    {ifs[0]}B62(){ifs[1]}")
    return ["check", kdl(tmp, text)]


def power_tower(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, "const a = 10 ** 10 ** 10\n" + DENSE)]


def long_integer(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, "const a = " + "7" * 5000 + "\n" + DENSE)]


def float_overflow(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, "const a = 1e300 * 1e300\n" + DENSE)]


def long_sum(tmp: Path) -> list[str]:
    body = "    y = " + " + ".join(["x"] * 1000) + "\n    output y"
    return ["check", kdl(tmp, MODEL.format(body=body))]


def long_pipe(tmp: Path) -> list[str]:
    body = "    y = x" + " |> Dense(4)" * 1000 + "\n    output y"
    return ["check", kdl(tmp, MODEL.format(body=body))]


def deep_negation(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, "const a = " + "- " * 2000 + "1\n" + DENSE)]


def many_consts(tmp: Path) -> list[str]:
    consts = "".join(f"const c{i} = {i}\n" for i in range(40_000))
    return ["check", kdl(tmp, consts + DENSE)]


def many_errors(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, MODEL.format(body="    Dense(-1)\n" * 5000))]


def two_hundred_thousand_errors(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, MODEL.format(body="    Dense(-1)\n" * 200_000))]


def ten_megabyte_string(tmp: Path) -> list[str]:
    text = MODEL.format(body='    Dense(2, name="' + "a" * 10_000_000 + '")')
    return ["check", kdl(tmp, text)]


def long_string(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, MODEL.format(body='    Dense(2, name="' + "a" * 100_000 + '")'))]


# ---------------------------------------------------------------- reads


def import_dev_zero(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, 'import "/dev/zero"\n' + DENSE)]


def import_passwd(tmp: Path) -> list[str]:
    return ["check", kdl(tmp, 'import "/etc/passwd"\n' + DENSE)]


def import_fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.kdl")
    return ["check", kdl(tmp, 'import "pipe.kdl"\n' + DENSE)]


def import_link_to_secret(tmp: Path) -> list[str]:
    (tmp / "secret.txt").write_text("TOP-SECRET-LINE x y z\n")
    (tmp / "blocks.kdl").symlink_to(tmp / "secret.txt")
    return ["check", kdl(tmp, 'import "blocks.kdl"\n' + DENSE)]


def import_directory(tmp: Path) -> list[str]:
    (tmp / "dir.kdl").mkdir()
    return ["check", kdl(tmp, 'import "dir.kdl"\n' + DENSE)]


def check_dev_zero(tmp: Path) -> list[str]:
    return ["check", "/dev/zero"]


def check_fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.kdl")
    return ["check", "pipe.kdl"]


def viz_dev_zero(tmp: Path) -> list[str]:
    return ["viz", "/dev/zero", "-o", "out.svg"]


def viz_fifo_onnx(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.onnx")
    return ["viz", "pipe.onnx", "-o", "out.svg"]


def run_dev_zero(tmp: Path) -> list[str]:
    return ["run", "/dev/zero"]


def run_fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.onnx")
    return ["run", "pipe.onnx"]


def build_fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.kdl")
    return ["build", "pipe.kdl", "-o", "out.onnx"]


# ---------------------------------------------------------------- building


def build_too_big(tmp: Path) -> list[str]:
    text = "model M {\n    input x: float32[100000]\n    Dense(100000)\n}\n"
    return ["build", kdl(tmp, text), "-o", "out.onnx"]


def long_model_name(tmp: Path) -> list[str]:
    name = "M" * 300
    text = MODEL.replace("model M", f"model {name}").format(body="    Dense(2)")
    text += f"train {name} {{\n    loss = mse\n}}\n"
    return ["codegen", kdl(tmp, text), "--target", "train", "-o", "bundle"]


def absolute_csv_path(tmp: Path) -> list[str]:
    text = DENSE + 'train M {\n    loss = mse\n    callbacks = [CSVLogger("/tmp/x.csv")]\n}\n'
    return ["check", kdl(tmp, text)]


def escaping_checkpoint_path(tmp: Path) -> list[str]:
    text = DENSE + (
        "train M {\n    loss = mse\n"
        '    callbacks = [ModelCheckpoint(filepath="../../x.keras")]\n}\n'
    )
    return ["check", kdl(tmp, text)]


# ---------------------------------------------------------------- weights and inputs


def _npz(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _zip_bomb_member(path: Path, name: str, header: bytes, zeros: int) -> None:
    """Writes a zip holding `name`: `header` then `zeros` zero bytes, deflated. The
    deflate stream repeats one block (a full flush resets the compressor, so each MiB of
    zeros compresses to the same bytes): 512 MiB take ~0.5 MiB and no time to make."""
    import struct
    import zlib

    mib = 1 << 20
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(bytes(mib)) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = first + block * (zeros // mib) + deflate.flush()
    crc = zlib.crc32(header)
    zero_mib = bytes(mib)
    for _ in range(zeros // mib):
        crc = zlib.crc32(zero_mib, crc)
    size, encoded = len(header) + zeros, name.encode()
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0
    )
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
        len(encoded), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    directory = central + encoded
    end = struct.pack(
        "<4s4H2LH",
        b"PK\x05\x06",
        0,
        0,
        1,
        1,
        len(directory),
        len(local) + len(encoded) + len(data),
        0,
    )
    path.write_bytes(local + encoded + data + directory + end)


def npz_zip_bomb(tmp: Path) -> list[str]:
    """dense/kernel declared (2**27,) float32: 512 MiB of zeros, deflated to ~0.5 MiB."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (2**27,)}
    )
    _zip_bomb_member(tmp / "w.npz", "dense/kernel.npy", header.getvalue(), 2**27 * 4)
    with zipfile.ZipFile(tmp / "w.npz", "a") as archive:
        archive.writestr("dense/bias.npy", _npy_bytes(np.zeros(2, np.float32)))
    return ["build", kdl(tmp, DENSE), "--weights", "w.npz", "-o", "out.onnx"]


def npz_lying_header(tmp: Path) -> list[str]:
    """dense/kernel's header declares (100000, 100000); the member holds 32 bytes."""
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}
    )
    _npz(
        tmp / "w.npz",
        {
            "dense/kernel.npy": header.getvalue() + bytes(32),
            "dense/bias.npy": _npy_bytes(np.zeros(2, np.float32)),
        },
    )
    return ["build", kdl(tmp, DENSE), "--weights", "w.npz", "-o", "out.onnx"]


def npz_strings(tmp: Path) -> list[str]:
    _npz(
        tmp / "w.npz",
        {
            "dense/kernel.npy": _npy_bytes(np.array([["a", "b"]] * 4)),
            "dense/bias.npy": _npy_bytes(np.zeros(2, np.float32)),
        },
    )
    return ["build", kdl(tmp, DENSE), "--weights", "w.npz", "-o", "out.onnx"]


def _h5(tmp: Path, fill) -> list[str]:
    import h5py

    with h5py.File(tmp / "w.weights.h5", "w") as f:
        fill(f, h5py)
    return ["build", kdl(tmp, DENSE), "--weights", "w.weights.h5", "-o", "out.onnx"]


def h5_external_storage(tmp: Path) -> list[str]:
    def fill(f, h5py):
        group = f.create_group("layers/dense/vars")
        group.create_dataset("0", data=np.zeros((4, 2), np.float32))
        group.create_dataset("1", shape=(2,), dtype="f4", external=[("/etc/passwd", 0, 8)])

    return _h5(tmp, fill)


def h5_external_link(tmp: Path) -> list[str]:
    def fill(f, h5py):
        f["layers"] = h5py.ExternalLink(str(tmp / "elsewhere.h5"), "/layers")

    return _h5(tmp, fill)


def h5_virtual_dataset(tmp: Path) -> list[str]:
    def fill(f, h5py):
        group = f.create_group("layers/dense/vars")
        group.create_dataset("0", data=np.zeros((4, 2), np.float32))
        layout = h5py.VirtualLayout(shape=(2,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp / "source.h5"), "data", shape=(2,))
        group.create_virtual_dataset("1", layout)

    return _h5(tmp, fill)


def h5_gzip_bomb(tmp: Path) -> list[str]:
    """A dataset declaring 2**28 float32 (1 GiB), gzip, never written: a few KB on disk,
    1 GiB of fill values when read."""

    def fill(f, h5py):
        group = f.create_group("layers/dense/vars")
        group.create_dataset("0", shape=(2**28,), dtype="f4", chunks=(2**20,), compression="gzip")
        group.create_dataset("1", data=np.zeros(2, np.float32))

    return _h5(tmp, fill)


def h5_legacy_missing_weight(tmp: Path) -> list[str]:
    def fill(f, h5py):
        f.attrs["layer_names"] = [b"dense"]
        group = f.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        group.create_dataset("dense/kernel:0", data=np.zeros((4, 2), np.float32))

    return _h5(tmp, fill)


def _small_onnx(tmp: Path) -> None:
    """m.onnx: y = x + 1 on float32[batch, 4]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(np.ones(4, np.float32), "one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, tmp / "m.onnx")


def npy_lying_header(tmp: Path) -> list[str]:
    """--input x: a header declaring (10**9, 4) float32 over 16 bytes of data."""
    import io

    _small_onnx(tmp)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 4)}
    )
    (tmp / "x.npy").write_bytes(header.getvalue() + bytes(16))
    return ["run", "m.onnx", "--input", "x=x.npy"]


def npy_wrong_shape(tmp: Path) -> list[str]:
    _small_onnx(tmp)
    np.save(tmp / "x.npy", np.zeros((3, 5), np.float32))
    return ["run", "m.onnx", "--input", "x=x.npy"]


def onnx_external_data_outside(tmp: Path) -> list[str]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../../etc/passwd"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, tmp / "ext.onnx")
    np.save(tmp / "x.npy", np.zeros(4, np.float32))
    return ["run", "ext.onnx", "--input", "x=x.npy"]


# ---------------------------------------------------------------- the terminal


def escape_in_file_name(tmp: Path) -> list[str]:
    name = "evil\x1b]0;owned\x07\x1b[2J.kdl"
    return ["check", kdl(tmp, MODEL.format(body="    Dense(0)"), name=name)]


def escape_in_source_line(tmp: Path) -> list[str]:
    body = "    Dense(0)  # \x1b[31mred\x1b[0m \u202eevil"
    return ["check", kdl(tmp, MODEL.format(body=body))]


def escape_in_callback_path(tmp: Path) -> list[str]:
    text = DENSE + 'train M {\n    loss = mse\n    callbacks = [CSVLogger("a\\x1b[2Jb.csv")]\n}\n'
    return ["check", kdl(tmp, text)]
