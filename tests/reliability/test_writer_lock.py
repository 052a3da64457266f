"""One writer at a time across processes: the lock itself, and two `qos ingest` of different models run
at the same time (several rounds), which must both end up complete in the published warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import duckdb
import pytest

from qos_pipeline.prompts.design import load_design, render_prompts
from qos_pipeline.staging import WarehouseBusy, lock_file, writer_lock
from qos_pipeline.defs.partitions import GROUPS
from tests.defs.test_sensors import ticks, watch  # noqa: F401  (fixtures)
from tests.paths import ASSETS, ROOT

HOLD = """
import sys, time
from pathlib import Path
from qos_pipeline.staging import writer_lock
with writer_lock(Path(sys.argv[1]), "test holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(staging, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(staging), str(seconds)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_waits_saying_who_holds_the_lock(tmp_path):
    staging = tmp_path / "staging"
    proc = _holder(staging, 1.5)
    said, started = [], time.monotonic()
    with pytest.raises(WarehouseBusy, match=r"being written by pid \d+ \(test holder\)"):
        with writer_lock(staging, "sensor tick", wait=False):
            pass
    with writer_lock(staging, "second writer", notify=said.append):
        waited = time.monotonic() - started
        with writer_lock(staging, "same process again"):  # re-entrant: a CLI command around its own steps
            assert "second writer" in lock_file(staging).read_text()
    proc.wait(5)
    assert waited > 0.5 and len(said) == 1
    assert said[0].startswith("second writer: waiting for the warehouse writer lock") and "test holder" in said[0]


INGEST = """
import sys
from qos_pipeline.cli import main
for _ in range(int(sys.argv[3])):
    main(["ingest", sys.argv[1], "--model", sys.argv[2], "--labels", "human"])
"""


def _recorded(tmp_path, model):
    """Every demo prompt of two groups, one sample each, labelled: what another tool recorded for ``model``."""
    prompts = render_prompts(load_design("demo", ASSETS))
    prompts = prompts[prompts["name_group"].isin(["muslim", "white"])]
    path = tmp_path / f"{model}.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p, "response": f"{model} says the park.", "label": "answer"})
                              for p in prompts["prompt_text"]))
    return path, len(prompts)


def test_two_concurrent_ingests_always_publish_both_completely(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "QOS_WAREHOUSE": str(tmp_path / "wh")}
    (tmp_path / "home").mkdir()
    files = {m: _recorded(tmp_path, m) for m in ("model-a", "model-b")}
    procs = [subprocess.Popen([sys.executable, "-c", INGEST, str(path), model, "2"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for model, (path, _) in files.items()]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert any("waiting for the warehouse writer lock" in e for e in errors)  # they did overlap
    with duckdb.connect(str(tmp_path / "wh" / "qos.duckdb"), read_only=True) as con:
        rows = dict(con.execute("SELECT model_key, count(*) FROM judged GROUP BY 1").fetchall())
        groups = con.execute("SELECT DISTINCT model_key, name_group FROM generations ORDER BY 1, 2").fetchall()
    assert rows == {m: n for m, (_, n) in files.items()}
    assert groups == [(m, g) for m in files for g in ("muslim", "white")]


def test_the_sensor_skips_a_tick_while_a_writer_holds_the_lock(tiny_llama_dir, watch, ticks):  # noqa: F811
    from tests.defs.test_sensors import _copy

    _copy(tiny_llama_dir, watch / "ckpt-1", marker=True)
    holder = _holder(ticks.paths().staging, 60)
    try:
        result = ticks.tick()  # a tick must not block the daemon: it leaves the checkpoint for the next one
        assert not result.run_requests and not ticks.instance.get_dynamic_partitions("model")
        assert not (ticks.paths().warehouse / "models.added.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    assert {r.partition_key for r in ticks.tick().run_requests if r.job_name == "audit_job"} == \
        {f"{g}|ckpt-1" for g in GROUPS}
    assert ticks.instance.get_dynamic_partitions("model") == ["ckpt-1"]


SETUP = """
import sys
from pathlib import Path
from qos_pipeline.cli.common import instance, storage
from qos_pipeline.generation.models.added import register_recorded
paths = storage().paths()
with instance() as inst:
    for model, file in zip(sys.argv[1::2], sys.argv[2::2]):
        register_recorded(model, Path(file), "recorded", True, paths)
        inst.add_dynamic_partitions("model", [model])
"""

RUN = """
import sys, time
from qos_pipeline.cli.common import execute, instance, settings, storage
from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.judging.human import HUMAN_JUDGE
model, group = sys.argv[1], sys.argv[2]
defs = build_definitions(storage=storage(), audit=settings())
with instance() as inst:
    start = time.time()
    execute(defs, "audit_job", inst, model_group_key(model, group), {"judgments": {"config": {"judges": [HUMAN_JUDGE]}}})
    execute(defs, "metrics_job", inst)
    print(f"ran {start} {time.time()}", flush=True)
"""


def test_four_concurrent_dagster_runs_while_a_reader_queries(tmp_path):
    """Four runs of different model x group partitions (generations, judgments, then the warehouse build) at
    once, as the daemon launches them: every run succeeds, none fails on a lock, a read-only reader never
    gets an error, and the last published warehouse holds all four partitions completely."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "QOS_WAREHOUSE": str(tmp_path / "wh")}
    (tmp_path / "home").mkdir()
    files = {m: _recorded(tmp_path, m) for m in ("model-a", "model-b")}
    subprocess.run([sys.executable, "-c", SETUP, *[str(x) for m, (p, _) in files.items() for x in (m, p)]],
                   env=env, cwd=ROOT, check=True)
    procs = [subprocess.Popen([sys.executable, "-c", RUN, model, group], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for model in files for group in ("muslim", "white")]
    db, queries, errors = tmp_path / "wh" / "qos.duckdb", 0, []
    while any(p.poll() is None for p in procs):  # the reader: queries throughout, never takes the lock
        if db.exists():
            try:
                with duckdb.connect(str(db), read_only=True) as con:
                    con.execute("SELECT model_key, name_group, count(*) FROM judged GROUP BY ALL").fetchall()
                queries += 1
            except duckdb.Error as exc:
                errors.append(str(exc))
        time.sleep(0.2)
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outputs]
    assert not any("WarehouseBusy" in err or "lock" in err.lower() and "error" in err.lower() for _, err in outputs)
    spans = [tuple(map(float, out.split()[1:3])) for out, _ in outputs]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all four were running at one moment
    assert errors == [] and queries >= 3
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(((m, g), n) for m, g, n in con.execute(
            "SELECT model_key, name_group, count(*) FROM judged GROUP BY ALL").fetchall())
    assert rows == {(m, g): n // 2 for m, (_, n) in files.items() for g in ("muslim", "white")}


def test_judge_validate_stages_under_the_lock(tmp_path, monkeypatch, capsys):
    """`qos judge validate` writes staging and rebuilds: while another writer holds the lock it waits, saying
    so, and stages its figures only after."""
    from qos_pipeline.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str((tmp_path / "home")))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    (tmp_path / "home").mkdir()
    path, _ = _recorded(tmp_path, "model-a")
    holder = _holder(tmp_path / "wh" / "staging", 6)
    released = time.time() + 5.5  # the holder lets go 6 s after its "held" line
    main(["judge", "validate", str(path), "--judge", "rules", "--json"])
    holder.wait(10)
    assert "waiting for the warehouse writer lock" in capsys.readouterr().err
    staged = list((tmp_path / "wh" / "staging" / "judge_validations").rglob("*.parquet"))
    assert staged and all(f.stat().st_mtime > released for f in staged)
