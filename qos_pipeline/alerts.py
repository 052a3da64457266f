"""Delivering the regression gate's verdict without a network service: one JSON line appended to a file,
and/or a local command run with the JSON on its standard input (an argv list, never through a shell, so a
verdict's text cannot become a command). Pure: no dagster (the sensor is ``defs/alerts.py``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

COMMAND_TIMEOUT_S = 60


def append_line(file: Path, record: dict) -> None:
    """Append ``record`` as one JSON line; one ``write`` of a line opened in append mode, so lines of two
    writers never interleave."""
    file.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def run_command(argv: list[str], record: dict, timeout: float = COMMAND_TIMEOUT_S) -> str | None:
    """Run ``argv`` with ``record`` as JSON on its standard input; why it failed, or None."""
    try:
        done = subprocess.run(argv, input=json.dumps(record, sort_keys=True), text=True, capture_output=True,
                              timeout=timeout, check=False, shell=False)
    except FileNotFoundError:
        return f"alert command {argv[0]!r} not found; give its full path in QOS_ALERT_COMMAND"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"alert command {argv[0]!r} failed: {exc}"
    if done.returncode:
        tail = (done.stderr or done.stdout).strip()[-300:]
        return f"alert command {argv[0]!r} exited {done.returncode}: {tail}"
    return None


def deliver(record: dict, argv: list[str], file: str) -> list[str]:
    """Send ``record`` to the configured file and command; the problems met (empty: delivered)."""
    problems = []
    if file:
        try:
            append_line(Path(file).expanduser(), record)
        except OSError as exc:
            problems.append(f"alert file {file}: {exc}")
    if argv:
        problem = run_command(argv, record)
        if problem:
            problems.append(problem)
    return problems
