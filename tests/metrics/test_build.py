"""Staged partitions and the DuckDB build: atomic writes, clear errors, nothing published when blocked."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from qos_pipeline.metrics import publish
from qos_pipeline.prompts.design import load_design
from qos_pipeline.checks import BlockedError
from qos_pipeline.prompts.step import build_prompts
from qos_pipeline.provenance import generation_id
from qos_pipeline.metrics.step import rebuild_warehouse
from tests.paths import ASSETS
from qos_pipeline.staging import WarehouseError, partition_file, write_partition


def _stage_judged(staging, model="m", group="white", labels=("answer", "refusal"), version="v", config="h"):
    """A tiny consistent partition: two generations of one prompt, judged by 'judge-a'."""
    prompts, _ = build_prompts(load_design("demo", ASSETS), group, "r")
    p = prompts.iloc[0]
    gen = pd.DataFrame({"generation_id": [generation_id(f"{model}{version}{group}", r) for r in "ab"],
                        "prompt_id": p.prompt_id, "sample": [0, 1], "model_key": model, "model_version": version,
                        "prompt_format": "f", "system_prompt": None, "gen_config": "{}", "gen_config_hash": config,
                        "seed": pd.array([1, 2], dtype="Int64"), "response": ["a", "b"], "finish_reason": "eos",
                        "n_new_tokens": pd.array([1, 1], dtype="Int64"), "source": "generated", "run_id": "r",
                        "created_at": pd.Timestamp.now(tz="UTC"),
                        **{c: p[c] for c in ("design", "template_id", "template_name", "template_text", "target_group",
                                             "name", "name_group", "gender", "popularity", "prompt_text")}})
    judg = gen[["generation_id", "prompt_id", "sample", "model_key", "model_version", "prompt_format"]].assign(
        judge_id="judge-a", label=list(labels), reason="", scores=None, run_id="r", judged_at=pd.Timestamp.now(tz="UTC"))
    write_partition(gen, partition_file(staging, "generations", group, model))
    write_partition(judg, partition_file(staging, "judgments", group, model, "judge-a"))


def test_partition_keys_are_validated(tmp_path):
    for bad in ("a|b", "../x", "x'; drop table", "", "UPPER"):
        with pytest.raises(ValueError, match="not a valid key"):
            partition_file(tmp_path, "generations", "white", bad)


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "p.parquet"
    write_partition(pd.DataFrame({"a": [1]}), path)

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError):
        write_partition(pd.DataFrame({"a": [2, 3]}), path)
    monkeypatch.undo()
    assert pd.read_parquet(path)["a"].tolist() == [1]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_build_and_rates(tmp_path):
    _stage_judged(tmp_path / "staging")
    counts, outcomes = rebuild_warehouse(tmp_path / "staging", tmp_path / "qos.duckdb", "white")
    assert counts["generations"] == 2 and counts["label_rates_model"] == 7
    with duckdb.connect(str(tmp_path / "qos.duckdb"), read_only=True) as con:
        rates = dict(con.execute("SELECT label, rate FROM label_rates_model").fetchall())
        ci = con.execute("SELECT wilson_low, wilson_high, ci_low, ci_high, boot_resamples FROM label_rates_model "
                         "WHERE label = 'answer'").fetchone()
    assert rates["answer"] == 0.5 and rates["refusal"] == 0.5 and rates["failure"] == 0.0
    # one prompt (one template): the naive interval, but no cluster interval (resampling one template
    # cannot vary, and a zero-width interval would claim certainty)
    assert 0 < ci[0] < 0.5 < ci[1] < 1 and ci[2] is None and ci[3] is None and ci[4] == 1000
    assert all(o.passed for o in outcomes)


def test_corrupt_partition_is_named_and_db_kept(tmp_path):
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging)
    rebuild_warehouse(staging, db, "white")
    before = db.read_bytes()
    broken = partition_file(staging, "generations", "muslim", "m")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(WarehouseError, match="group=muslim"):
        rebuild_warehouse(staging, db, "white")
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".building")] == []


def test_failed_suite_does_not_publish(tmp_path):
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging)
    rebuild_warehouse(staging, db, "white")
    # a second judge that covers only the muslim group: 'every group present' must block the build
    _stage_judged(staging, group="muslim")
    judg = pd.read_parquet(partition_file(staging, "judgments", "muslim", "m", "judge-a"))
    write_partition(judg.assign(judge_id="other"),
                              partition_file(staging, "judgments", "muslim", "m", "other"))
    with pytest.raises(BlockedError, match="metric_tables_groups_present"):
        rebuild_warehouse(staging, db, "white")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 2  # the old build


def test_a_partition_between_its_generations_and_judgments_steps_does_not_block(tmp_path):
    """Another run has staged generations[m|muslim] and not yet its judgments (runs of different partitions
    at once): the build publishes the judged groups and lists the waiting partition in a warning, instead of
    failing 'every group present' (which would fail every run that builds at that moment)."""
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging)
    _stage_judged(staging, group="muslim")
    partition_file(staging, "judgments", "muslim", "m", "judge-a").unlink()
    counts, outcomes = rebuild_warehouse(staging, db, "white")
    found = {o.name: o for o in outcomes}
    assert found["metric_tables_groups_present"].passed and counts["judgments"] == 2
    waiting = found["metric_tables_partitions_judged"]
    assert not waiting.passed and not waiting.blocking and "muslim" in waiting.metadata["failed"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT name_group FROM label_rates_group").fetchall() == [("white",)]


def test_missing_reference_group_only_warns(tmp_path):
    _stage_judged(tmp_path / "staging", group="muslim")
    _, outcomes = rebuild_warehouse(tmp_path / "staging", tmp_path / "qos.duckdb", "white")
    ref = [o for o in outcomes if o.name == "metric_tables_reference_group_present"][0]
    assert not ref.passed and not ref.blocking


def test_readonly_connect_names_missing_db(tmp_path):
    with pytest.raises(WarehouseError, match="qos run"):
        publish.connect_readonly(tmp_path / "none.duckdb")


def test_staged_file_of_an_older_version_is_named(tmp_path):
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging)
    old = partition_file(staging, "judgments", "white", "m", "judge-a")
    pd.read_parquet(old).drop(columns=["generation_id"]).to_parquet(old)  # as written before generation ids
    with pytest.raises(WarehouseError, match=r"group=white/judge-a.parquet lacks column\(s\) \['generation_id'\]"):
        rebuild_warehouse(staging, db, "white")
    assert not db.exists()


def test_a_label_of_a_replaced_response_is_never_joined(tmp_path):
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging, labels=("refusal", "refusal"))
    stale = pd.read_parquet(partition_file(staging, "judgments", "white", "m", "judge-a"))
    _stage_judged(staging, labels=("answer", "answer"), version="v")  # same keys...
    gens = partition_file(staging, "generations", "white", "m")
    new = pd.read_parquet(gens).assign(response=["c", "d"])  # ...new responses: new ids
    new["generation_id"] = [generation_id("other-run", r) for r in new["response"]]
    new.to_parquet(gens)
    write_partition(stale.assign(judge_id="judge-b"), partition_file(staging, "judgments", "white", "m", "judge-b"))
    write_partition(stale.assign(generation_id=new["generation_id"].tolist()),
                    partition_file(staging, "judgments", "white", "m", "judge-a"))
    rebuild_warehouse(staging, db, "white")
    with duckdb.connect(str(db), read_only=True) as con:
        joined = con.execute("SELECT judge_id, count(*) FROM judged GROUP BY 1").fetchall()
        stored = con.execute("SELECT count(*) FROM judgments").fetchone()[0]
    assert joined == [("judge-a", 2)] and stored == 4  # judge-b labelled the old responses: stored, never joined


def test_groups_decoded_differently_are_never_compared(tmp_path):
    # white sampled greedily, muslim regenerated with other sampling settings: a gap between them would be
    # a decoding difference, not a group difference.
    staging, db = tmp_path / "staging", tmp_path / "qos.duckdb"
    _stage_judged(staging, group="white", labels=("answer", "answer"), config="greedy")
    _stage_judged(staging, group="muslim", labels=("refusal", "refusal"), config="t07")
    _, outcomes = rebuild_warehouse(staging, db, "white")
    with duckdb.connect(str(db), read_only=True) as con:
        disp = con.execute("SELECT name_group, gen_config_hash, any_refusal_rate, ref_any_refusal_rate, "
                           "any_refusal_diff FROM disparities").df().set_index("name_group")
        cells = con.execute("SELECT DISTINCT gen_config_hash, design FROM label_rates_model").fetchall()
    assert disp.loc["muslim", "gen_config_hash"] == "t07" and disp.loc["white", "gen_config_hash"] == "greedy"
    assert pd.isna(disp.loc["muslim", "ref_any_refusal_rate"]) and pd.isna(disp.loc["muslim", "any_refusal_diff"])
    assert sorted(cells) == [("greedy", "demo"), ("t07", "demo")]  # no rate pools the two configs
    mixed = {o.name: o for o in outcomes}["metric_tables_one_config_per_model"]
    assert not mixed.passed and not mixed.blocking and "t07" in mixed.metadata["failed"]


def test_duckdb_memory_limit_is_read_and_checked(monkeypatch):
    from qos_pipeline.metrics.build import MEMORY_ENV, memory_limit

    monkeypatch.setenv(MEMORY_ENV, "2GB")
    assert memory_limit() == "2GB"
    monkeypatch.setenv(MEMORY_ENV, "lots; DROP TABLE x")
    with pytest.raises(WarehouseError, match="QOS_DUCKDB_MEMORY='lots; DROP TABLE x' is not a size"):
        memory_limit()
