"""`qos doctor`: repair what killed commands and run workers left, and say what else needs a decision."""

from __future__ import annotations

import argparse

from qos_pipeline import journal
from qos_pipeline.cli.common import SCRATCH, Expected, instance, say, storage
from qos_pipeline.defs.runs import reap
from qos_pipeline.generation.models.added import restore
from qos_pipeline.processes import remove_dead_scratch
from qos_pipeline.staging import writer_lock


def add_doctor_parser(sub) -> None:
    """Add ``qos doctor`` to the sub-command parser ``sub``."""
    doc = sub.add_parser("doctor", help="repair what killed commands left: unfinished runs, pool slots, scratch "
                                        "folders; list interrupted ingests")
    doc.add_argument("--drop-ingest", metavar="MODEL", help="drop the interrupted ingest of MODEL: what it wrote "
                     "is deleted and the key's previous rows (and registration) come back")
    doc.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> None:
    """``qos doctor``: repair what killed commands left and list (or drop) interrupted ingests."""
    paths = storage().paths()
    with instance() as inst:
        done = [item.describe() for item in reap(inst, say)]
    done += [str(folder) for folder in remove_dead_scratch(paths.warehouse, SCRATCH)]
    if args.drop_ingest:
        with writer_lock(paths.staging, f"qos doctor --drop-ingest {args.drop_ingest}"):
            info = journal.drop(paths.staging, args.drop_ingest)
            if info is None:
                raise Expected(f"model key {args.drop_ingest!r} has no interrupted ingest to drop")
            restore(args.drop_ingest, info.get("previous"), paths)
        say(f"dropped the interrupted ingest of {info.get('file')} into {args.drop_ingest!r}: its previous rows "
            "are back (they stayed published meanwhile)")
        done.append(args.drop_ingest)
    waiting = journal.pending(paths.staging)
    for item in waiting.values():
        say(item.describe())
    if not done and not waiting:
        print("qos doctor: nothing to repair (no unfinished run of a dead process, no scratch folder of a killed "
              "ingest, no interrupted ingest)")
