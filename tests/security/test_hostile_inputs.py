"""Hostile and extreme inputs (issue 9): each fails fast with exit 1 and a message that
names the problem, or works, within a CPU-time and a memory bound; never a traceback,
never exit 70. Every case runs in its own capped child process (tests/security/capped.py)
so a regression fails here instead of hanging or swapping the machine; the cases run two
at a time.

The bounds (10 s of CPU, 250 MiB resident unless a case says otherwise) are far above
what each case takes now (at most about a second of CPU and 30 to 120 MiB) and far
below what each took before the fix (a nested repeat 37 s and 2.3 GB, `import
"/dev/zero"` 7.9 GB, a 10 MB string 2.8 GB, 40,000 consts 48 s, `10 ** 10 ** 10`
forever), so they measure the fix, not the machine. CPU time, not wall time, is bounded:
it does not grow when the machine is busy.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.security import hostile_inputs as make
from tests.security.capped import GiB, run_capped


@dataclass(frozen=True)
class Case:
    name: str
    make: object  # tmp folder -> argv
    code: int
    says: tuple[str, ...]  # fragments of the output
    cpu_s: float = 10.0
    peak_mib: float = 250.0
    never: tuple[str, ...] = field(default=())  # what must not be printed
    address_space: int = 2 * GiB


HEAVY = 4 * GiB  # address space for commands that import onnxruntime
CASES = [
    # expansion, numbers, source size (issue 9 sections 4 and 5)
    Case("nested repeat", make.nested_repeat, 1, ("this repeat runs 1,000,000 times",)),
    Case("block fan-out", make.block_fan_out, 1, ("more than 10,000 layers",)),
    Case("empty block fan-out", make.empty_block_fan_out, 1, ("block instances and repeat",)),
    Case("64 blocks deep, 190 ifs each", make.deepest_structure, 0, ("190 layers",)),
    Case("10 ** 10 ** 10", make.power_tower, 1, ("the number is too large", "m.kdl:1:")),
    Case("5,000-digit integer", make.long_integer, 1, ("(5,000 digits) is too large",)),
    Case("float overflow", make.float_overflow, 1, ("too large for a float",)),
    Case("1,000-term sum", make.long_sum, 0, ("model M: ok",)),
    Case("1,000-step pipeline", make.long_pipe, 0, ("model M: ok", "1000 layers")),
    Case("2,000 nested minus signs", make.deep_negation, 1, ("nest more than 250 deep",)),
    Case("40,000 consts", make.many_consts, 0, ("model M: ok",), cpu_s=15),
    Case("5,000 errors", make.many_errors, 1, ("... and 4,900 more errors", "5,000 errors")),
    Case("200,000 errors", make.two_hundred_thousand_errors, 1, ("the limit is 1,048,576",)),
    Case("10 MB string", make.ten_megabyte_string, 1, ("the limit is 1,048,576",)),
    Case("100,000-character string", make.long_string, 1, ("the limit is 4,096",)),
    # reads that leak or never end (section 3, 4)
    Case("import /dev/zero", make.import_dev_zero, 1, ("only .kdl files can be imported",)),
    Case(
        "import /etc/passwd",
        make.import_passwd,
        1,
        ("only .kdl files can be imported",),
        never=("root:",),
    ),
    Case("import a FIFO", make.import_fifo, 1, ("is a FIFO (named pipe)",)),
    Case(
        "import a link to a secret",
        make.import_link_to_secret,
        1,
        ("only .kdl files can be imported",),
        never=("TOP-SECRET",),
    ),
    Case("import a directory", make.import_directory, 1, ("is a directory",)),
    Case("check /dev/zero", make.check_dev_zero, 1, ("is a character device",)),
    Case("check a FIFO", make.check_fifo, 1, ("is a FIFO (named pipe)",)),
    Case("viz /dev/zero", make.viz_dev_zero, 1, ("is a character device",)),
    Case("viz a FIFO", make.viz_fifo_onnx, 1, ("is a FIFO",), address_space=HEAVY),
    Case("run /dev/zero", make.run_dev_zero, 1, ("is a character device",), address_space=HEAVY),
    Case("run a FIFO", make.run_fifo, 1, ("is a FIFO",), address_space=HEAVY),
    Case("build a FIFO", make.build_fifo, 1, ("is a FIFO",), address_space=HEAVY),
    # what building and writing may do (sections 2 and 5)
    Case(
        "Dense(100000) on float32[100000]",
        make.build_too_big,
        1,
        ("needs 37.3 GiB for its weights", "layer 'dense'", "m.kdl:3:5"),
        address_space=HEAVY,
    ),
    Case(
        "300-character model name",
        make.long_model_name,
        0,
        ("_b6843f1f3c2f.train.onnx",),
        cpu_s=30,
        address_space=HEAVY,
    ),
    Case("CSVLogger('/tmp/x.csv')", make.absolute_csv_path, 1, ("m.kdl:7:28", "absolute path")),
    Case(
        "ModelCheckpoint('../../x.keras')",
        make.escaping_checkpoint_path,
        1,
        ("m.kdl:7:43", "leave the output folder"),
    ),
    # weights and inputs (sections 3, 4, 5)
    Case(
        "zip bomb in an .npz",
        make.npz_zip_bomb,
        1,
        ("dense' kernel has shape (134217728,)", "needs (4, 2)"),
        address_space=HEAVY,
    ),
    Case(
        ".npz header declaring 10^10 values",
        make.npz_lying_header,
        1,
        ("declares 40,000,000,128 bytes",),
        address_space=HEAVY,
    ),
    Case(".npz of strings", make.npz_strings, 1, ("holds <U1 values",), address_space=HEAVY),
    Case(
        "HDF5 external storage",
        make.h5_external_storage,
        1,
        ("layers/dense/vars/1 uses HDF5 external storage", "/etc/passwd"),
        never=("root:",),
        address_space=HEAVY,
    ),
    Case("HDF5 external link", make.h5_external_link, 1, ("external link",), address_space=HEAVY),
    Case(
        "HDF5 virtual dataset",
        make.h5_virtual_dataset,
        1,
        ("layers/dense/vars/1 is a virtual dataset",),
        address_space=HEAVY,
    ),
    Case(
        "HDF5 gzip bomb",
        make.h5_gzip_bomb,
        1,
        ("declares shape (268435456,)",),
        address_space=HEAVY,
    ),
    Case(
        "legacy .h5 missing a weight",
        make.h5_legacy_missing_weight,
        1,
        ("lists the weight 'dense/bias:0', which the file does not hold",),
        address_space=HEAVY,
    ),
    Case(
        ".npy header declaring 4e9 values",
        make.npy_lying_header,
        1,
        ("declares 16,000,000,128 bytes",),
        address_space=HEAVY,
    ),
    Case(
        ".npy of the wrong shape",
        make.npy_wrong_shape,
        1,
        ("expected shape (?, 4), got (3, 5)",),
        address_space=HEAVY,
    ),
    Case(
        "ONNX external data outside its folder",
        make.onnx_external_data_outside,
        1,
        ("outside the model's folder",),
        never=("root:",),
        address_space=HEAVY,
    ),
    # control characters reach the terminal escaped (section 6)
    Case(
        "escape sequences in a file name",
        make.escape_in_file_name,
        1,
        ("evil\\x1b]0;owned\\x07\\x1b[2J.kdl:3:11",),
        never=("\x1b", "\x07"),
    ),
    Case(
        "escape sequences in a source line",
        make.escape_in_source_line,
        1,
        ("\\x1b[31mred\\x1b[0m \\u202eevil",),
        never=("\x1b", "\u202e"),
    ),
    Case(
        "escape sequence in a CSVLogger path",
        make.escape_in_callback_path,
        1,
        ("the control character '\\x1b'",),
        never=("\x1b",),
    ),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case started at once on a small pool; each test waits for its own."""
    root = tmp_path_factory.mktemp("hostile")

    def run(case: Case):
        folder = root / case.name.replace("/", "_").replace(" ", "_")
        folder.mkdir()
        argv = case.make(folder)
        return run_capped(argv, folder, address_space=case.address_space, cpu_s=int(case.cpu_s * 3))

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
        yield {case.name: pool.submit(run, case) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, outcomes):
    outcome = outcomes[case.name].result()
    printed = outcome.stdout + outcome.stderr
    assert outcome.code == case.code, outcome
    assert "Traceback" not in printed and "internal error" not in printed, outcome
    for fragment in case.says:
        assert fragment in printed, outcome
    for fragment in case.never:
        assert fragment not in printed, outcome
    assert outcome.cpu_s < case.cpu_s, outcome
    assert outcome.peak_mib < case.peak_mib, outcome
