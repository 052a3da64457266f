"""`qos report` and `qos rebuild`: read or rebuild the warehouse."""

from __future__ import annotations

import argparse
from pathlib import Path

from qos_pipeline.cli.common import Expected, print_report, rebuild, repair, storage
from qos_pipeline.metrics.findings import finding_lines
from qos_pipeline.metrics.html import write_html
from qos_pipeline.metrics.plots import write_plots
from qos_pipeline.metrics.publish import connect_readonly


def cmd_report(args: argparse.Namespace) -> None:
    """``qos report``: print the warehouse's report."""
    db = storage().paths().db
    if not db.is_file():  # an empty warehouse is no bug: the message alone, no traceback log
        raise Expected(f"{db} does not exist yet: run `qos run` (or `qos ingest`) first")
    if args.html is None and not args.plots:
        print_report(db, args.model, args.judge)
        return
    with connect_readonly(db) as con:
        print("\n".join(finding_lines(con, args.model, args.judge)))
    images = None
    if args.plots:
        written = write_plots(db, None, args.model, args.judge)
        print("\n".join(f"wrote {path}" for path in written.values()))
        images = {name: path.read_bytes() for name, path in written.items()}
    if args.html is not None:
        print(f"wrote {write_html(db, Path(args.html).resolve(), args.model, args.judge, images)}")


def cmd_rebuild(args: argparse.Namespace) -> None:
    """``qos rebuild``: repair what killed commands left, then rebuild the warehouse from the staged files."""
    repair(storage().paths())
    rebuild(log_to_stderr=False)
