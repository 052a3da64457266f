"""`qos ui`: the Dagster UI and daemon for this project (``dagster dev``)."""

from __future__ import annotations

import argparse
import ipaddress
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


def exposure_warning(host: str, port: int) -> str | None:
    """Why binding ``host`` is risky, or None for a loopback address (the default): the Dagster UI has no
    login, and whoever reaches it can launch runs, turn sensors on and read every output."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        loopback = False
    if loopback:
        return None
    return (f"warning: --host {host} serves the Dagster UI beyond this machine, without any login: anyone who can "
            f"reach port {port} can launch runs, start sensors and read every prompt and response. Prefer the "
            f"default 127.0.0.1 and an SSH tunnel (ssh -L {port}:127.0.0.1:{port} THIS_HOST), or put an "
            "authenticating proxy in front")


def cmd_ui(args: argparse.Namespace) -> None:
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    home = dagster_home()
    print(f"Dagster UI and daemon on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops both")
    os.chdir(PROJECT_ROOT)
    cmd = dagster_dev_command(args.host, args.port)
    os.execvp(cmd[0], cmd)
