"""`qos report` and `qos rebuild`: read or rebuild the warehouse."""

from __future__ import annotations

import argparse

from qos_pipeline.cli.common import execute, instance, print_report
from qos_pipeline.settings import project_paths


def cmd_report(args: argparse.Namespace) -> None:
    print_report(project_paths().db, args.model, args.judge)


def cmd_rebuild(args: argparse.Namespace) -> None:
    from qos_pipeline.definitions import build_definitions

    with instance() as inst:
        execute(build_definitions(), "metrics_job", inst)
