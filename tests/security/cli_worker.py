"""A long-lived ktrans for the fuzz tests: reads one JSON argv per line on stdin, runs
`transpiler.cli.main(argv)` in this process (imports paid once), answers one JSON line
{"code", "out", "err"}. It runs under an address-space cap, and in its own process, so an
input that crashed a native library (onnxruntime, HDF5) would end this worker, which the
test reports, not pytest."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys


def main() -> None:
    cap = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    os.environ.pop("KTRANS_DEBUG", None)
    from transpiler.cli import main as ktrans

    for line in sys.stdin:
        argv = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = ktrans(argv)
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 2
        reply = {"code": code, "out": out.getvalue()[-4000:], "err": err.getvalue()[-4000:]}
        sys.__stdout__.write(json.dumps(reply) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
