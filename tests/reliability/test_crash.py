"""The crash harness: the real `qos ingest` and `qos rebuild` killed with SIGKILL and SIGHUP at every
boundary between their stages (file read and checked, journal begun, each group's generations and
judgments written, ingest committed, warehouse built, published). After each kill the next command
(`qos rebuild`, anyone's) must finish within a bound, leave no run of the dead process unfinished, and
publish either the old state or the complete new one, never a mix; an interrupted ingest is named, and
running it again completes it. Figures (boundaries, runs, longest recovery) are printed with -s."""

from __future__ import annotations

import signal

import pytest

from tests.reliability.crash import (
    BOUND_S, copy_project, kill_at, new_project, published, recorded_file, run, unfinished_runs)

GROUPS = ("muslim", "white")
INGEST_POINTS = ["ingest:spooled", "ingest:checked", "ingest:begun", "generations:written@1", "judgments:written@1",
                 "generations:written@2", "judgments:written@2", "ingest:committed", "build:built", "build:published"]
REBUILD_POINTS = ["build:built", "build:published"]
COMMITTED = {"ingest:committed", "build:built", "build:published"}  # the new rows are the ones loaded from here
JOURNALED = set(INGEST_POINTS[2:]) - COMMITTED  # killed between the journal and its commit: "interrupted"
CASES = [("ingest", p) for p in INGEST_POINTS] + [("rebuild", p) for p in REBUILD_POINTS]
RECOVERY: list[tuple[str, float]] = []


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A project holding file A's outputs under key ``rec`` (published), file B, and the state a complete
    ``qos ingest B --replace`` publishes."""
    root = tmp_path_factory.mktemp("crash")
    project = new_project(root / "base")
    a, b = recorded_file(root, "A", GROUPS), recorded_file(root, "B", GROUPS)
    code, err, _ = run(project, ["ingest", str(a), "--model", "rec", "--labels", "human"])
    assert code == 0, err
    complete = copy_project(project, root / "complete")
    code, err, _ = run(complete, ["ingest", str(b), "--model", "rec", "--labels", "human", "--replace"])
    assert code == 0, err
    old, new = published(project), published(complete)
    assert old != new and {g for g, *_ in new["generations"]} == set(GROUPS)
    return project, b, old, new


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["SIGKILL", "SIGHUP"])
@pytest.mark.parametrize("command,point", CASES, ids=[f"{c}-{p}".replace(":", "-").replace("@", "-") for c, p in CASES])
def test_a_killed_command_never_freezes_the_next_nor_half_publishes(base, command, point, sig, tmp_path):
    start, b, old, new = base
    project = copy_project(start, tmp_path / "case")
    args = ["ingest", str(b), "--model", "rec", "--labels", "human", "--replace"] if command == "ingest" else ["rebuild"]
    killed = kill_at(project, args, point, sig)
    assert killed.leftover == [], f"processes of the killed command still alive: {killed.leftover}"

    code, err, seconds = run(project, ["rebuild"])
    RECOVERY.append((f"{command} {point} {sig.name}", seconds))
    print(f"\ncrash {command} at {point} by {sig.name}: next `qos rebuild` exit {code} in {seconds:.1f} s "
          f"(longest so far {max(s for _, s in RECOVERY):.1f} s over {len(RECOVERY)} runs)")
    assert code == 0, err
    assert seconds < BOUND_S
    assert unfinished_runs(project) == []  # the dead process's run is marked failed, its pool slots freed
    assert not list((project / "wh").glob(".ingest-check-*"))  # its scratch folder is gone
    committed = command == "ingest" and point in COMMITTED
    assert published(project) == (new if committed else old)
    if command == "ingest" and point in JOURNALED:
        assert "was interrupted" in err and "qos doctor --drop-ingest rec" in err
        code, err, _ = run(project, args)  # the same command again resumes and completes it
        assert code == 0, err
        assert published(project) == new
