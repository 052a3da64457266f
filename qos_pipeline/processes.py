"""Processes and what they leave behind: whether a recorded process is still running, scratch folders named
after their process (removed once it is gone), and named pause points for the crash tests.

Pure: no dagster, no duckdb (psutil for process start times, which tell a reused pid from the original).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PAUSE_ENV = "QOS_TEST_PAUSE_AT"
_REACHED: Counter = Counter()


def process_gone(pid: int, since: float | None = None) -> bool:
    """No live process has ``pid``, or the one that has it started after ``since`` (a UNIX time: when the pid
    was recorded), i.e. the pid was reused by another process."""
    import psutil

    if pid == os.getpid():
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() == psutil.STATUS_ZOMBIE or (since is not None and proc.create_time() > since + 1.0)
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # another user's live process
        return False


@contextmanager
def scratch_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A temporary folder ``parent/<prefix><pid>-<random>``, removed on exit; one left by a killed process is
    removed by ``remove_dead_scratch`` (its name says whose it was)."""
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-", dir=parent) as folder:
        yield Path(folder)


def remove_dead_scratch(parent: Path, prefix: str) -> list[Path]:
    """Remove the ``scratch_dir`` folders under ``parent`` whose process is gone; returns them."""
    removed = []
    for folder in sorted(parent.glob(f"{prefix}*")) if parent.is_dir() else []:
        pid = folder.name[len(prefix):].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and process_gone(int(pid), folder.stat().st_mtime):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def pause_point(name: str) -> None:
    """A named boundary between two steps of a command, where the crash tests kill it (a test hook, off
    unless ``QOS_TEST_PAUSE_AT`` is set). ``QOS_TEST_PAUSE_AT=<name>[@<n>]``, read here at run time: the n-th
    time (default the first) this process reaches ``name`` it prints ``QOS_PAUSED <name> <pid>`` on stderr
    and sleeps until it is killed. Names: see README "Operations" (crash harness)."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    _REACHED[name] += 1
    point, _, nth = wanted.partition("@")
    if point == name and _REACHED[name] == int(nth or 1):
        print(f"QOS_PAUSED {name} {os.getpid()}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
