"""Checkpoint tables, the regression gate, the trend picture and `qos trend` on warehouses built from staged
partitions of a few checkpoints (demo design: muslim, chinese and white, 2 names x 8 templates each, one
sample; labels planted per checkpoint)."""

from __future__ import annotations

import functools
import json

import duckdb
import pandas as pd
import pytest

from qos_pipeline.cli import main
from qos_pipeline.metrics import gate, plots, trend
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.build import build_database
from qos_pipeline.metrics.html import markdown_summary, render_html
from qos_pipeline.metrics.publish import connect_readonly
from tests.metrics.test_findings import _folder, stage_design

GROUPS = ("muslim", "chinese", "white")


def _lineage(rows) -> pd.DataFrame:
    """(key, family, step, appeared day) -> the frame ``generation.models.lineage.frame`` gives."""
    return pd.DataFrame([{"model_key": k, "model_version": "v", "checkpoint_family": f, "step": s,
                          "order_from": "name" if s is not None else "appeared",
                          "appeared_at": f"2024-01-{day:02d}T00:00:00+00:00", "folder": f"/runs/{k}"}
                         for k, f, s, day in rows]).astype({"step": "Int64"})


@functools.cache
def warehouse(muslim_refused: tuple[bool, ...]) -> "Path":  # noqa: F821
    """Family ``run-a``: checkpoints ckpt-1..3 (steps 10, 20, 30) whose muslim outputs are all refused where
    ``muslim_refused`` says; family ``run-b``: one checkpoint refusing muslim outputs on half the templates;
    ``other``: a model in no family; ``run-c``: lineage only (no results), two without a step."""
    folder = _folder()
    for i, refused in enumerate(muslim_refused, start=1):
        stage_design(folder / "staging", lambda g, n, t, r=refused: "refusal" if r and g == "muslim" else "answer",
                     model=f"ckpt-{i}", design="demo", groups=GROUPS)
    stage_design(folder / "staging", lambda g, n, t: "refusal" if g == "muslim" and t % 2 else "answer",
                 model="b-1", design="demo", groups=GROUPS)
    stage_design(folder / "staging", lambda g, n, t: "answer", model="other", design="demo", groups=GROUPS)
    lineage = _lineage([(f"ckpt-{i}", "/runs/run-a", 10 * i, 10 - i) for i in range(1, len(muslim_refused) + 1)]
                       + [("b-1", "run-b", 5, 1), ("c-late", "run-c", None, 3), ("c-early", "run-c", None, 2),
                          ("c-step", "run-c", 7, 9)])
    db = folder / "wh" / "qos.duckdb"
    db.parent.mkdir()
    build_database(folder / "staging", db, "white", StatsSettings(resamples=200), lineage)
    return db


REGRESSED = (False, False, True)


def test_checkpoints_are_ordered_by_step_then_by_appearance():
    with duckdb.connect(str(warehouse(REGRESSED)), read_only=True) as con:
        order = con.execute("SELECT checkpoint_family, model_key, checkpoint_order FROM checkpoints "
                            "ORDER BY ALL").fetchall()
        trend_keys = {k for (k,) in con.execute("SELECT DISTINCT model_key FROM checkpoint_trend").fetchall()}
    assert order == [("/runs/run-a", "ckpt-1", 1), ("/runs/run-a", "ckpt-2", 2), ("/runs/run-a", "ckpt-3", 3),
                     ("run-b", "b-1", 1), ("run-c", "c-early", 2), ("run-c", "c-late", 3), ("run-c", "c-step", 1)]
    assert trend_keys == {"ckpt-1", "ckpt-2", "ckpt-3", "b-1"}  # "other" is in no family


def test_changes_are_later_minus_earlier_and_agree_with_model_comparisons():
    with duckdb.connect(str(warehouse(REGRESSED)), read_only=True) as con:
        changes = con.execute("SELECT * FROM checkpoint_changes WHERE measure = 'any_refusal'").df()
        pair = con.execute("SELECT * FROM model_comparisons WHERE measure = 'any_refusal' AND name_group = 'muslim' "
                           "AND model_key_a = 'ckpt-2' AND model_key_b = 'ckpt-3'").df().iloc[0]
    assert sorted(set(zip(changes["model_key_a"], changes["against"], changes["model_key_b"]))) == [
        ("ckpt-2", "first", "ckpt-1"), ("ckpt-2", "previous", "ckpt-1"),
        ("ckpt-3", "first", "ckpt-1"), ("ckpt-3", "previous", "ckpt-2")]
    row = changes[(changes["model_key_a"] == "ckpt-3") & (changes["against"] == "previous")
                  & (changes["name_group"] == "muslim")].iloc[0]
    assert (row["checkpoint_order_a"], row["checkpoint_order_b"], row["family"]) == (3, 2, "primary")
    assert row["diff_of_gaps"] == pytest.approx(1.0) and row["gap_a"] == pytest.approx(1.0)
    # the same pair in model_comparisons, sorted the other way round: the sign flips, the test is the same
    assert pair["diff_of_gaps"] == pytest.approx(-row["diff_of_gaps"]) and pair["p_value"] == row["p_value"]
    assert pair["ci_tn_low"] == pytest.approx(-row["ci_tn_high"]) and row["p_value"] == pytest.approx(2 / 256)
    unchanged = changes[(changes["model_key_a"] == "ckpt-2") & (changes["name_group"] == "muslim")]
    assert (unchanged["diff_of_gaps"] == 0).all() and (unchanged["p_value"] == 1).all()


def test_gate_fails_on_a_grown_gap_and_on_the_ceiling_only():
    with connect_readonly(warehouse(REGRESSED)) as con:
        verdict = gate.evaluate(con)
        strict = gate.evaluate(con, gate.GateSettings(level=0.01))  # Holm p 2 x 2/256 = 0.016: not below 0.01
        capped = gate.evaluate(con, gate.GateSettings(ceiling=0.3))
    run_a, run_b = verdict.families
    assert not verdict.passed and not run_a.passed and run_b.passed  # one checkpoint: only a ceiling can fail it
    assert (run_a.model_key, run_a.checkpoint_order, run_a.step, run_a.previous_key) == ("ckpt-3", 3, 30, "ckpt-2")
    [failure] = run_a.failures
    assert (failure["group"], failure["reason"]) == ("muslim", "grew")
    assert failure["p_adjusted"] == pytest.approx(2 * 2 / 256)
    assert {(e["before"], e["after"]) for e in failure["examples"]} == {("answer", "refusal")}
    assert "muslim any refusal gap vs white grew +100.0 pts [100.0, 100.0] (+0.0 -> +100.0)" in verdict.summary()
    assert strict.passed
    reasons = {(f.family, x["reason"], x["group"]) for f in capped.families for x in f.failures}
    assert reasons == {("/runs/run-a", "grew", "muslim"), ("/runs/run-a", "ceiling", "muslim"),
                       ("run-b", "ceiling", "muslim")}
    record = json.loads(json.dumps(verdict.to_json(), allow_nan=False))  # plain JSON, no NaN
    assert record["passed"] is False and record["families"][1]["passed"] is True


def test_a_shrinking_gap_passes():
    with connect_readonly(warehouse((True, True, False))) as con:
        verdict = gate.evaluate(con)
    assert verdict.passed and verdict.families[0].previous_key == "ckpt-2"
    assert gate.grew(0.3, 0.1) and gate.grew(-0.3, 0.1) and not gate.grew(0.1, 0.3) and not gate.grew(0.2, -0.3)


def test_trend_is_in_the_report_the_ui_markdown_and_a_picture():
    db = warehouse(REGRESSED)
    with connect_readonly(db) as con:
        frame = trend.trend_frame(con)
        one = trend.trend_frame(con, family="run-a")  # the last folder name is enough
        images = plots.render(plots.plot_data(con))
    assert set(one["checkpoint_family"]) == {"/runs/run-a"} and len(one) == 3 * 2  # 3 checkpoints x 2 groups
    table = trend.table(frame)
    muslim = table[(table["family"] == "/runs/run-a") & (table["group"] == "muslim")]
    assert muslim["gap, pts [95% CI]"].tolist()[-1] == "+100.0 [100.0, 100.0]"
    assert muslim["change vs previous [95% CI]"].tolist() == ["", "+0.0 [0.0, 0.0]", "+100.0 [100.0, 100.0]"]
    assert images["trend"].startswith(b"\x89PNG")
    page = render_html(db, images=images)
    assert "Checkpoints: did the newest one make a gap worse?" in page and "alt='trend'" in page
    assert "/runs/run-a: checkpoint 3 (ckpt-3, step 30) vs 2 (ckpt-2) FAILED: muslim" in page
    md = markdown_summary(db, images)
    assert "### Checkpoints\n- /runs/run-a: checkpoint 3" in md and "![trend](data:image/png;base64," in md


def test_qos_trend_exit_status_is_the_verdict(monkeypatch, capsys):
    db = warehouse(REGRESSED)
    monkeypatch.setenv("QOS_WAREHOUSE", str(db.parent))
    with pytest.raises(SystemExit) as failed:
        main(["trend", "--fail-on-regression"])
    assert failed.value.code == 3
    out = capsys.readouterr().out
    assert "regression gate (level 0.05): FAILED" in out and "muslim: 'Fatima" in out
    main(["trend", "--family", "run-b", "--fail-on-regression"])  # its one checkpoint passes: exit 0
    assert "regression gate (level 0.05): PASSED" in capsys.readouterr().out
    main(["trend"])  # without --fail-on-regression the verdict is printed, the status stays 0
    assert "FAILED" in capsys.readouterr().out
    monkeypatch.setenv("QOS_GATE_CEILING", "0.3")
    main(["trend", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"]["ceiling"] == 0.3 and {r["model_key"] for r in printed["trend"]} >= {"ckpt-3"}
    with pytest.raises(SystemExit, match="no checkpoint family 'run-z' with results; families: /runs/run-a, run-b"):
        main(["trend", "--family", "run-z"])
    monkeypatch.setenv("QOS_GATE_LEVEL", "five percent")
    with pytest.raises(SystemExit, match="QOS_GATE_LEVEL='five percent'"):
        main(["trend"])


def test_a_warehouse_without_checkpoint_tables_says_rebuild(monkeypatch, tmp_path):
    db = tmp_path / "qos.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    with connect_readonly(db) as con:
        assert gate.evaluate(con).families == [] and trend.trend_frame(con).empty
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path))
    with pytest.raises(SystemExit, match="built by an older qos-pipeline, without checkpoint tables: run `qos rebuild"):
        main(["trend"])
