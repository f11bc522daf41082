"""`ktrans report RUN_DIR`: renders the run's history.png and report.html again (what
every run writes when it ends), e.g. after more epochs or for a run of an older ktrans."""

from __future__ import annotations

from pathlib import Path

from transpiler.run_folder import fail


def cmd_report(args) -> int:
    from transpiler.templates.ktrans_runtime.report import write_report

    folder = Path(args.run_dir)
    if not (folder / "history.json").is_file() and not (folder / "results.json").is_file():
        fail(f"{folder} is not a run folder: it has no history.json or results.json")
    written = write_report(folder)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="render a run's history.png and report.html again")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of ktrans train")
    p.set_defaults(run=cmd_report)
