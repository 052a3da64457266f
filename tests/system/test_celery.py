"""Celery executor for real: Redis broker and PostgreSQL instance on loopback, two dagster-celery workers,
two runs of different partitions. GPU steps go to the `gpu` queue, the rest to `dagster`; each partition's
generation step runs on a different worker; the DuckDB tables hold both partitions afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.paths import ROOT, load_script

services = load_script("scripts/celery_services.py")

BIN = Path(sys.executable).parent
MODELS = ["fake-a", "fake-b"]
GROUP = "white"


@pytest.fixture()
def cluster(tmp_path, monkeypatch):
    """Redis, PostgreSQL (SQLite when it is not installed) and two workers; all stopped afterwards."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed: apt-get install -y redis-server (.ci/run does)")
    for module in ("dagster_celery", "redis"):
        pytest.importorskip(module, reason="the Celery libraries are not installed: bash scripts/setup.sh installs them")
    started = []
    try:
        port = services.free_port()
        started.append(services.start_redis(tmp_path, port))
        url = None
        if services.postgres_bin():
            pg, url = services.start_postgres(services.free_port())
            started.append(pg)
        broker, backend = f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1"
        home = services.instance_home(tmp_path / "home", url, gpu_slots=2)  # two GPUs: one step each
        env = {"DAGSTER_HOME": str(home), "QOS_WAREHOUSE": str(tmp_path / "wh"), "QOS_CELERY_BROKER": broker,
               "QOS_CELERY_BACKEND": backend, "QOS_TEST_GENERATION_DELAY_S": "4", "PYTHONPATH": str(ROOT)}
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        config = services.worker_config(tmp_path / "celery.yaml", broker, backend)
        workers = [services.start_worker(n, ["gpu", "dagster"], config, dict(os.environ), tmp_path / f"{n}.log")
                   for n in ("worker-1", "worker-2")]
        started += workers
        for worker in workers:
            services.wait_for_log(worker, " ready.", timeout=90)
        yield home, tmp_path / "wh", bool(url)
    finally:
        for service in reversed(started):
            service.stop()
        assert all(s.proc.poll() is not None for s in started)


def _execute(home, job: str, partition: str | None) -> str:
    """One run, orchestrated here, its steps executed by the workers; returns the run id."""
    sys.modules.pop("tests.celery_defs", None)  # read the env set by the fixture
    from tests import celery_defs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        tags = {"dagster/partition": partition} if partition else {}
        result = dg.execute_job(dg.reconstructable(getattr(celery_defs, job)), instance=instance, tags=tags)
        assert result.success, f"{job} [{partition}] failed"
        return result.run_id


def _launch(job: str, partition: str, log) -> subprocess.Popen:
    """A run orchestrated by its own process (`dagster job execute`), as two hosts launching runs would."""
    cmd = [str(BIN / "dagster"), "job", "execute", "-m", "tests.celery_defs", "-a", "defs", "-j", job,
           "-d", str(ROOT), "--tags", json.dumps({"dagster/partition": partition})]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _worker_by_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker that ran it, from the engine event each worker reports."""
    out = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.event_specific_data.metadata or {}
        if "Celery worker" in metadata:
            out[entry.step_key] = metadata["Celery worker"].value
    return out


def _queue_by_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    return {e.step_key: e.message.split('to queue "')[1].rstrip('".')
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if e.message and e.message.startswith("Submitting celery task")}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_workers_share_the_partitions_of_two_runs(cluster):
    home, warehouse, on_postgres = cluster
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("model", MODELS)
    _execute(home, "prompts_job", GROUP)
    # Two runs at once, as a backfill of two partitions launches them.
    with (warehouse.parent / "runs.log").open("w") as log:
        runs = [_launch("audit_job", f"{GROUP}|{m}", log) for m in MODELS]
        assert [r.wait(timeout=180) for r in runs] == [0, 0]
    _execute(home, "metrics_job", None)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert on_postgres == (type(instance.run_storage).__name__ == "PostgresRunStorage")
        by_partition = {r.tags["dagster/partition"]: r.run_id for r in instance.get_runs(dg.RunsFilter(job_name="audit_job"))}
        run_ids = [by_partition[f"{GROUP}|{m}"] for m in MODELS]
        workers = [_worker_by_step(instance, r) for r in run_ids]
        queues = [_queue_by_step(instance, r) for r in run_ids]
    assert queues == [{"generations": "gpu", "judgments": "dagster"}] * 2
    gen_workers = {w["generations"] for w in workers}
    assert len(gen_workers) == 2 and all(w.startswith(("worker-1@", "worker-2@")) for w in gen_workers), workers
    with duckdb.connect(str(warehouse / "qos.duckdb"), read_only=True) as con:
        counts = dict(con.execute("SELECT model_key, count(*) FROM judgments GROUP BY 1").fetchall())
        rates = con.execute("SELECT model_key, sum(rate) FROM label_rates_model GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == {m: 16 for m in MODELS}  # demo design: 2 white names x 8 templates, 1 sample
    assert [m for m, _ in rates] == MODELS and all(abs(r - 1) < 1e-9 for _, r in rates)


def test_worker_config_file_matches_the_executor(monkeypatch):
    """scripts/celery.yaml (what workers read) and the executor's config must agree, or steps wait forever."""
    from dagster_celery.cli import get_validated_config

    from qos_pipeline.defs.executors import celery_config

    monkeypatch.setenv("QOS_CELERY_BROKER", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("QOS_CELERY_BACKEND", "redis://127.0.0.1:1/1")
    worker = get_validated_config(str(ROOT / "scripts" / "celery.yaml"))
    assert {k: worker[k] for k in ("broker", "backend", "config_source")} == celery_config()


def test_deploy_sample_instance_config_is_valid(tmp_path):
    """The multi-host dagster.yaml in docs/DEPLOY.md passes Dagster's instance config validation."""
    import yaml
    from dagster._core.instance.config import dagster_instance_config

    text = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    sample = text.split("  ```yaml\n")[1].split("  ```")[0]
    (tmp_path / "dagster.yaml").write_text(sample)
    config, _ = dagster_instance_config(str(tmp_path))
    assert "postgres_db" in config["storage"]["postgres"] and yaml.safe_load(sample)["concurrency"]["pools"]["default_limit"] == 1
