"""No wait without an end: a run left unfinished by a killed process (here a run worker holding the
`duckdb_writer` pool slot, killed with SIGKILL) is found, marked failed and its slot freed by `qos doctor`
and by the daemon's dead_runs_sensor; a live process's run is left alone; and the command's own runs claim
no pool slot, so a killed `qos` command cannot freeze the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from qos_pipeline.cli import main
from qos_pipeline.defs.runs import dead_runs, dead_runs_sensor
from qos_pipeline.processes import process_gone
from tests.paths import ROOT

WORKER = """
import time
import dagster as dg

@dg.op(pool="duckdb_writer")
def hold():
    print("claimed", flush=True)
    time.sleep(600)

@dg.job
def holder():
    hold()

holder.execute_in_process(instance=dg.DagsterInstance.get())
"""


@pytest.fixture()
def home(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    return tmp_path / "home"


def _worker(home):
    """A run worker as the daemon starts one (pools at op granularity), holding the duckdb_writer slot."""
    proc = subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "DAGSTER_HOME": str(home)})
    assert proc.stdout.readline().strip() == "claimed"
    return proc


def _instance(home):
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def test_doctor_fails_the_run_of_a_killed_worker_and_frees_its_pool_slot(home, capsys):
    proc = _worker(home)
    with _instance(home) as instance:
        assert dead_runs(instance) == []  # alive: left alone
        [record] = instance.get_run_records()
        assert instance.event_log_storage.get_concurrency_info("duckdb_writer").claimed_slots
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    main(["doctor"])
    err = capsys.readouterr().err
    assert f"run {record.dagster_run.run_id[:8]} (holder) was left unfinished by pid {proc.pid}, which is gone" in err
    assert "marked failed, its pool slots freed" in err
    with _instance(home) as instance:
        assert instance.get_run_by_id(record.dagster_run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("duckdb_writer").claimed_slots
    main(["doctor"])
    assert "nothing to repair" in capsys.readouterr().out


def test_the_daemon_sensor_reaps_a_dead_run(home):
    proc = _worker(home)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with _instance(home) as instance:
        result = dead_runs_sensor(dg.build_sensor_context(instance=instance))
        assert "marked 1 dead run(s) failed" in str(result.skip_message)
        assert instance.get_run_records()[0].dagster_run.status == dg.DagsterRunStatus.FAILURE


@pytest.mark.timeout(300)  # before, this hung for ever
def test_the_commands_runs_claim_no_pool_slot(home):
    """`qos` runs its steps in process without claiming pool slots, so a slot held by a dead run worker
    does not hold them up (before, the command spun in Dagster's claim loop, deaf to SIGTERM)."""
    from qos_pipeline.cli.common import instance

    proc = _worker(home)  # holds the only duckdb_writer slot, and stays alive
    try:
        @dg.op(pool="duckdb_writer")
        def write():
            return 1

        @dg.job
        def writer():
            write()

        with instance() as inst:
            assert writer.execute_in_process(instance=inst).success
            info = inst.event_log_storage.get_concurrency_info("duckdb_writer")
            assert {s.run_id for s in info.claimed_slots} == {inst.get_run_records()[-1].dagster_run.run_id}
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_counts_as_gone():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(2)
        assert not process_gone(proc.pid, since=time.time())  # recorded after it started: the same process
        assert process_gone(proc.pid, since=time.time() - 3600)  # recorded before it started: a reused pid
    finally:
        proc.kill()
        proc.wait()
    assert process_gone(proc.pid)
