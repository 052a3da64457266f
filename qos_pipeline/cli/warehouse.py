"""`qos report` and `qos rebuild`: read or rebuild the warehouse."""

from __future__ import annotations

import argparse

from qos_pipeline.cli.common import execute, instance, print_report, settings, storage
from qos_pipeline.definitions import build_definitions


def cmd_report(args: argparse.Namespace) -> None:
    print_report(storage().paths().db, args.model, args.judge)


def cmd_rebuild(args: argparse.Namespace) -> None:
    with instance() as inst:
        execute(build_definitions(storage=storage(), audit=settings()), "metrics_job", inst)
