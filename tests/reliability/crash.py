"""The crash harness's tools (after SQLite's crash tests): run the real `qos` command in its own session,
stop it at a named boundary (``QOS_TEST_PAUSE_AT``, ``processes.pause_point``), kill it with a signal, and
read back what the published warehouse holds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil

from qos_pipeline.prompts.design import load_design, render_prompts
from tests.paths import ASSETS, ROOT

QOS = [sys.executable, "-c", "from qos_pipeline.cli import main; main()"]
BOUND_S = 240
"""The next command must finish within this (a hang detector: a frozen command would spin for ever)."""


def recorded_file(folder: Path, tag: str, groups: tuple[str, ...]) -> Path:
    """Every demo prompt of ``groups``, one sample each, labelled: outputs recorded elsewhere, told apart by
    ``tag`` (in every response, and in the labels: file A answers everything, file B refuses Muslim names)."""
    prompts = render_prompts(load_design("demo", ASSETS))
    prompts = prompts[prompts["name_group"].isin(groups)]
    path = folder / f"{tag}.jsonl"
    path.write_text("\n".join(json.dumps({
        "prompt": p, "response": f"{tag} says the park.",
        "label": "refusal" if tag == "B" and g == "muslim" else "answer"})
        for p, g in zip(prompts["prompt_text"], prompts["name_group"])) + "\n")
    return path


def environment(project: Path, pause: str | None = None) -> dict:
    env = {**os.environ, "DAGSTER_HOME": str(project / "home"), "QOS_WAREHOUSE": str(project / "wh")}
    env.pop("QOS_TEST_PAUSE_AT", None)
    if pause:
        env["QOS_TEST_PAUSE_AT"] = pause
    return env


def new_project(folder: Path) -> Path:
    """An empty project whose Dagster instance has the repository's dagster.yaml (pools and all)."""
    (folder / "home").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", folder / "home" / "dagster.yaml")
    return folder


def run(project: Path, args: list[str], timeout: float = BOUND_S) -> tuple[int, str, float]:
    """(exit status, stderr, seconds) of ``qos ARGS``; killed (with its session) when over ``timeout``."""
    started = time.monotonic()
    proc = subprocess.Popen([*QOS, *args], env=environment(project), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return -1, f"TIMEOUT after {timeout} s (frozen?)\n{err}", time.monotonic() - started
    return proc.returncode, err, time.monotonic() - started


@dataclass
class Killed:
    point: str
    stderr: str
    leftover: list[str]  # processes of the killed command's session still alive afterwards


def kill_at(project: Path, args: list[str], point: str, sig: int, timeout: float = BOUND_S) -> Killed:
    """Start ``qos ARGS``, wait until it reaches ``point``, send ``sig``, wait for it to die."""
    proc = subprocess.Popen([*QOS, *args], env=environment(project, point), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    watchdog = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("QOS_PAUSED "):
                break
        else:
            raise AssertionError(f"qos {' '.join(args)} never reached {point}:\n{''.join(lines)}")
        os.kill(proc.pid, sig)
        proc.wait(30)
    finally:
        watchdog.cancel()
    lines.append(proc.stderr.read())
    time.sleep(0.2)
    leftover = [f"{p.pid} {p.name()} {p.status()}" for p in psutil.process_iter()
                if _session(p.pid) == proc.pid and p.status() != psutil.STATUS_ZOMBIE]
    return Killed(point, "".join(lines), leftover)


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def published(project: Path) -> dict:
    """What the published warehouse says about model key ``rec``: its responses and labels per group."""
    with duckdb.connect(str(project / "wh" / "qos.duckdb"), read_only=True) as con:
        gens = con.execute("SELECT name_group, response, count(*) FROM generations WHERE model_key = 'rec' "
                           "GROUP BY ALL ORDER BY ALL").fetchall()
        labels = con.execute("SELECT name_group, label, count(*) FROM judged WHERE model_key = 'rec' "
                             "GROUP BY ALL ORDER BY ALL").fetchall()
    return {"generations": gens, "judged": labels}


def unfinished_runs(project: Path) -> list[str]:
    """Runs the instance still shows as in progress (a dead process's run never ends by itself)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(project / "home"))) as instance:
        records = instance.get_run_records(dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))
        return [r.dagster_run.run_id for r in records]


def copy_project(project: Path, target: Path) -> Path:
    shutil.copytree(project, target, symlinks=True)
    return target
