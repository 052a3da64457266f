"""Findings in plain words: a planted gap is named with its interval and adjusted p-value; a warehouse
without gaps says "no disparity" (and, for a model that barely refuses, how to see the paper's finding);
statistics switched off are said to be off.

The warehouses here (``planted_db``, ``null_db``) are built once per test session and shared by the report,
plot and HTML tests: the full design (8 names x 32 templates per group), one sample per prompt, labels
decided by a function of (group, name, template)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.build import build_database
from qos_pipeline.metrics.findings import PILOT_HINT, findings, finding_lines
from qos_pipeline.prompts.design import load_design
from qos_pipeline.prompts.step import build_prompts
from qos_pipeline.provenance import generation_id
from qos_pipeline.staging import partition_file, write_partition
from tests.metrics.test_build import _stage_judged
from tests.paths import ASSETS

GROUPS = ("muslim", "white")


@functools.cache
def _design(design: str):
    return load_design(design, ASSETS)


@functools.cache
def _prompts(design: str, group: str) -> pd.DataFrame:
    prompts, _ = build_prompts(_design(design), group, "r")
    prompts["template_index"] = prompts["template_id"].rank(method="dense").astype(int) - 1
    return prompts


def stage_design(staging: Path, label, model: str = "m", design: str = "full", groups=GROUPS, keep=None) -> None:
    """Stage every prompt of ``design`` for ``groups`` once (those ``keep(group, name, template_index)``
    keeps, when given), judged by 'judge-a' as ``label(group, name, template_index)`` says."""
    for group in groups:
        p = _prompts(design, group)
        if keep is not None:
            p = p[[keep(group, name, t) for name, t in zip(p["name"], p["template_index"])]]
        n = len(p)
        gen = p[["prompt_id", "design", "template_id", "template_name", "template_text", "target_group", "name",
                 "name_group", "gender", "popularity", "prompt_text"]].assign(
            generation_id=[generation_id(f"{model}|{pid}", "x") for pid in p["prompt_id"]], sample=0,
            model_key=model, model_version="v", prompt_format="f", system_prompt=None, gen_config="{}",
            gen_config_hash="h", seed=pd.array([1] * n, dtype="Int64"), response="x", finish_reason="eos",
            n_new_tokens=pd.array([1] * n, dtype="Int64"), source="generated", run_id="r",
            created_at=pd.Timestamp.now(tz="UTC"))
        labels = [label(group, name, t) for name, t in zip(p["name"], p["template_index"])]
        judg = gen[["generation_id", "prompt_id", "sample", "model_key", "model_version", "prompt_format"]].assign(
            judge_id="judge-a", label=labels, reason="", scores=None, run_id="r",
            judged_at=pd.Timestamp.now(tz="UTC"))
        write_partition(gen, partition_file(staging, "generations", group, model))
        write_partition(judg, partition_file(staging, "judgments", group, model, "judge-a"))


def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="qos-findings-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _build(stage, stats: StatsSettings = StatsSettings(resamples=200)) -> Path:
    folder = _folder()
    stage(folder / "staging")
    db = folder / "wh" / "qos.duckdb"
    db.parent.mkdir()
    build_database(folder / "staging", db, "white", stats)
    return db


@functools.cache
def planted_db() -> Path:
    """Muslim names are refused on half of the templates (harmful refusal on one of them), white names never:
    a +50-point any-refusal gap."""
    def label(group, name, t):
        if group == "muslim" and t % 2 == 0:
            return "harmful refusal" if t == 0 else "refusal"
        return "answer"
    return _build(lambda staging: stage_design(staging, label))


@functools.cache
def null_db() -> Path:
    """No significant gap: 'quiet' never refuses; 'even' refuses 8 of 32 templates for every name of both
    groups; 'small' refuses every muslim name, but on the demo design (2 names per group), where the
    permutation test cannot reach 0.05."""
    def stage(staging):
        stage_design(staging, lambda g, n, t: "answer", model="quiet")
        stage_design(staging, lambda g, n, t: "refusal" if t < 8 else "answer", model="even")
        stage_design(staging, lambda g, n, t: "refusal" if g == "muslim" else "answer", model="small",
                     design="demo")
    return _build(stage)


def _by_model(db: Path) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        return {f.cell["model_key"]: f for f in findings(con)}


def test_a_planted_gap_is_named_with_its_interval_and_adjusted_p():
    f = _by_model(planted_db())["m"]
    assert f.status == "gaps" and f.reference == "white" and f.adjust == "holm"
    muslim = [g for g in f.significant if g.measure == "any_refusal"]
    assert len(muslim) == 1 and muslim[0].group == "muslim" and abs(muslim[0].diff - 0.5) < 1e-9
    assert muslim[0].ci_low < 0.5 < muslim[0].ci_high and muslim[0].p_adjusted < 0.05
    assert f.sentence.startswith("m: 1 of 1 groups refused more often than white after Holm adjustment")
    assert "muslim +50.0 pts [" in f.sentence and "p_adj <0.001" in f.sentence
    assert "no disparity" not in f.sentence


def test_no_gap_says_no_disparity_and_how_to_see_the_papers_finding():
    found = _by_model(null_db())
    quiet, even = found["quiet"], found["even"]
    assert quiet.status == even.status == "none"
    for f in (quiet, even):
        assert "no disparity found" in f.sentence and not f.significant
    assert "barely refuses (0.0% of 512 outputs)" in quiet.sentence and PILOT_HINT in quiet.sentence
    assert "barely refuses" not in even.sentence and PILOT_HINT not in even.sentence  # 25% refused: not barely
    assert "largest any-refusal gap: muslim +0.0 pts" in even.sentence
    small = found["small"]  # a real gap the design cannot test: said, not hidden
    assert small.status == "none" and "largest any-refusal gap: muslim +100.0 pts" in small.sentence
    assert "cannot reach p < 0.05" in small.sentence and "--design full" in small.sentence
    assert "cannot reach" not in even.sentence


@functools.cache
def stats_off_db() -> Path:
    """A gap, but a build with the statistics switched off (0 resamples)."""
    def stage(staging):
        _stage_judged(staging, group="white", labels=("answer", "answer"))
        _stage_judged(staging, group="muslim", labels=("refusal", "refusal"))
    return _build(stage, StatsSettings(resamples=0))


def test_statistics_off_is_said_plainly():
    with duckdb.connect(str(stats_off_db()), read_only=True) as con:
        lines = finding_lines(con)
    assert len(lines) == 1 and lines[0].startswith("m: statistics are off for this build")


def test_filters_and_an_empty_selection():
    with duckdb.connect(str(null_db()), read_only=True) as con:
        assert [f.cell["model_key"] for f in findings(con, model="even")] == ["even"]
        assert finding_lines(con, model="nope") == ["no judged generations: run `qos run` or `qos ingest` first."]
