"""`qos ui`: the Dagster UI and daemon for this project (``dagster dev``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from qos_pipeline.cli.common import dagster_home
from qos_pipeline.settings import PROJECT_ROOT


def dagster_dev_command(host: str, port: int) -> list[str]:
    """`dagster dev` (UI + daemon) for this project. `env --default-signal` makes it stop on SIGTERM even
    when started in the background, where it would otherwise ignore the signal."""
    dagster = Path(sys.executable).with_name("dagster")
    return ["env", "--default-signal=INT,TERM", str(dagster), "dev", "-m", "qos_pipeline.definitions",
            "-h", host, "-p", str(port)]


def cmd_ui(args: argparse.Namespace) -> None:
    home = dagster_home()
    print(f"Dagster UI and daemon on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops both")
    os.chdir(PROJECT_ROOT)
    cmd = dagster_dev_command(args.host, args.port)
    os.execvp(cmd[0], cmd)
