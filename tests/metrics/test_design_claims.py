"""Statistics that match the claim: the headline interval holds its level when names differ within groups,
an incomplete design is flagged and compared on the templates both groups share, a design whose names
cannot reach significance says so, and one definition of the ratio and of integer counts."""

from __future__ import annotations

import functools

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from qos_pipeline.metrics.expectations import validate_database
from qos_pipeline.metrics.findings import findings
from qos_pipeline.metrics.stats.cells import cells_from_counts
from qos_pipeline.metrics.stats.compare import group_comparisons
from qos_pipeline.metrics.stats.design import names_needed, permutation_floor, shared_templates
from tests.metrics.test_findings import _build, stage_design
from tests.metrics.test_stats import KEYS, cell_frame

ALL_GROUPS = ("asian", "black", "chinese", "jewish", "mexican", "muslim", "white")


def _null_cell(sim: int, name_sd: float, drop_lowest: int = 0):
    """A crossed random-effects logistic audit without group effect: 24 templates, 8 + 8 names whose logits
    differ by ``name_sd``, 3 samples. ``drop_lowest``: group 'a' misses its least-refused templates."""
    rng = np.random.default_rng(1000 + sim)
    template = rng.normal(-1.5, 1.0, 24)
    refusals = {g: {f"{g}{i}": rng.binomial(3, expit(template + rng.normal(0, name_sd))) for i in range(8)}
                for g in ("a", "white")}
    frame = cell_frame(refusals)
    if drop_lowest:
        rates = {f"t{t:02d}": sum(v[t] for v in refusals["a"].values()) for t in range(24)}
        gone = sorted(rates, key=rates.get)[:drop_lowest]
        frame = frame[~((frame["name_group"] == "a") & frame["template_id"].isin(gone))]
    [cell] = cells_from_counts(frame, KEYS)
    cell.draw(200, seed=sim)
    return cell


@pytest.mark.slow  # a simulation of hundreds of audits: CI's tier
def test_the_headline_interval_excludes_zero_at_about_5_percent_when_names_differ():
    # 300 seeded null audits whose names differ a lot within groups (logit SD 1.2: per-name refusal rates
    # tens of points apart). The headline interval (templates x names) excludes 0 in 5.3% of them (1,000
    # runs: 5.6%; Monte Carlo sd with 300 runs ~1.3%); the names-fixed interval, the old headline, in 63%.
    headline = fixed = 0
    for sim in range(300):
        row = group_comparisons(_null_cell(sim, 1.2), "white", seed=sim).query("measure == 'refusal'").iloc[0]
        headline += row["diff_ci_tn_low"] > 0 or row["diff_ci_tn_high"] < 0
        fixed += row["diff_ci_low"] > 0 or row["diff_ci_high"] < 0
    assert headline / 300 <= 0.07 and fixed / 300 >= 0.4


@pytest.mark.slow  # a simulation of hundreds of audits: CI's tier
def test_a_group_missing_its_least_refused_templates_is_compared_on_shared_templates():
    # Null audits where group 'a' lacks its 6 least-refused templates: compared on all rows, the permutation
    # test rejected ~97% of them; on the templates both groups share it rejects 4.0% (200 runs; tolerance
    # 7.5%, Monte Carlo sd ~1.5%).
    rejections = 0
    for sim in range(200):
        row = group_comparisons(_null_cell(sim, 0.7, drop_lowest=6), "white", seed=sim).query(
            "measure == 'refusal'").iloc[0]
        assert row["shared_templates"] == 18 and row["n_dropped"] == 0 and row["n_dropped_vs"] == 6 * 8 * 3
        rejections += row["p_value"] < 0.05
    assert rejections / 200 <= 0.075


def _labels(group, name, t):
    """Refusals on a third of the templates, more for muslim names; white names refuse a little too."""
    if group == "muslim":
        return "refusal" if t % 2 == 0 or name == "Mohammed" else "answer"
    return "refusal" if (t % 3 == 0 and name in ("John", "Emily", "Mei", "Yuki")) else "answer"


@functools.cache
def unbalanced_db():
    """White names lack the last 8 of the 32 templates."""
    return _build(lambda staging: stage_design(staging, _labels, keep=lambda g, n, t: g != "white" or t < 24))


def test_an_incomplete_grid_warns_and_the_gap_is_the_balanced_one():
    db = unbalanced_db()
    check = next(o for o in validate_database(db) if o.name == "metric_tables_design_complete")
    assert not check.passed and not check.blocking and "white" in check.metadata["failed"]
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT * FROM group_comparisons WHERE family = 'primary'").df().iloc[0]
        judged = con.execute("SELECT name_group, template_id, label FROM judged").df()
    kept = set(judged.loc[judged["name_group"] == "white", "template_id"])
    balanced = judged[judged["template_id"].isin(kept)]
    refused = balanced["label"].isin(["refusal", "harmful refusal"])
    by_hand = refused[balanced["name_group"] == "muslim"].mean() - refused[balanced["name_group"] == "white"].mean()
    assert (row["shared_templates"], row["templates"], row["n_dropped"], row["n_dropped_vs"]) == (24, 32, 64, 0)
    assert row["diff"] == pytest.approx(by_hand) and row["n"] == 24 * 8 and row["n_vs"] == 24 * 8
    with duckdb.connect(str(db), read_only=True) as con:
        [f] = findings(con)
    assert "compared on the 24 of 32 templates every name of both carries (64 outputs left out" in f.sentence
    assert "paired within template" not in f.sentence


def _four_names(group, name, t):
    """asian and chinese keep 4 names, every other group its 8."""
    return group not in ("asian", "chinese") or name in ("Yuki", "Minji", "Thuy", "Ayaka", "Mei", "Xiuying",
                                                         "Yanling", "Xiaoqing")


@functools.cache
def four_names_db():
    return _build(lambda staging: stage_design(staging, _labels, groups=ALL_GROUPS, keep=_four_names))


def test_four_names_against_eight_are_said_to_be_out_of_reach_where_they_are():
    with duckdb.connect(str(four_names_db()), read_only=True) as con:
        comp = con.execute("SELECT * FROM group_comparisons").df().set_index(["measure", "name_group", "vs_group"])
        [f] = findings(con)
    # primary family: 6 groups vs white, Holm's first threshold 0.05 / 6 = 0.0083 > 1/495: reachable
    primary = comp.loc[("any_refusal", "asian", "white")]
    assert primary["family"] == "primary" and primary["family_size"] == 6
    assert primary["p_floor"] == pytest.approx(1 / 495) and pd.isna(primary["names_needed"])
    assert primary["p_adjusted_floor"] < 0.05
    # secondary family: 57 tests; even if all reached their floors, a 4-vs-8 comparison stays above 0.05
    explored = comp.loc[("refusal", "asian", "white")]
    assert explored["family"] == "secondary" and explored["family_size"] == 57
    assert explored["p_adjusted_floor"] >= 0.05 and explored["names_needed"] == 5
    assert "cannot reach significance by design" in f.sentence and "p >= 0.00202" in f.sentence
    assert "against the family's threshold 0.05/57 = 0.000877" in f.sentence
    assert "5 names would reach it on their own" in f.sentence
    assert "asian vs white cannot" not in f.sentence  # the primary comparison can reach it


def test_one_ratio_and_integer_counts():
    with duckdb.connect(str(four_names_db()), read_only=True) as con:
        ratios = con.execute("""
            SELECT d.any_refusal_ratio, c.ratio FROM disparities d JOIN group_comparisons c
              ON c.name_group = d.name_group AND c.vs_group = d.reference_group AND c.measure = 'any_refusal'
            WHERE d.name_group <> d.reference_group""").fetchall()
        types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() "
                                 "WHERE table_name = 'group_comparisons'").fetchall())
    assert len(ratios) == 6 and all(a == pytest.approx(b, rel=1e-12) for a, b in ratios)
    assert {types[c] for c in ("k", "n", "k_vs", "n_vs", "n_unjudged", "n_dropped")} == {"BIGINT"}


def test_floors_and_names_needed_by_hand():
    assert permutation_floor(4, 8) == pytest.approx(1 / 495) and permutation_floor(8, 8) == pytest.approx(2 / 12870)
    assert permutation_floor(2, 2) == pytest.approx(1 / 3) and np.isnan(permutation_floor(0, 8))
    assert names_needed(4, 8, 0.05 / 57) == 5 and names_needed(8, 8, 0.05 / 6) is None
    n = np.array([[3, 3, 3, 3], [3, 0, 3, 3], [3, 3, 0, 3]])  # template 1 lacks name 1, template 2 name 2
    assert shared_templates(n, np.array([1, 1, 0, 0], bool), np.array([0, 0, 0, 1], bool)).tolist() == [
        True, False, True]


def test_the_primary_measure_decides_the_family():
    cell = _null_cell(0, 0.5)
    for primary in ("any_refusal", "refusal"):
        out = group_comparisons(cell, "white", seed=0, primary_measure=primary)
        assert out.loc[out["family"] == "primary", "measure"].tolist() == [primary]
        # each family adjusted on its own: the primary one alone is its raw p
        row = out[out["family"] == "primary"].iloc[0]
        assert row["p_adjusted"] == pytest.approx(row["p_value"])
    assert sorted(out["family_size"]) == [1, 2, 2]


def test_template_rates_per_group_and_pooled():
    with duckdb.connect(str(unbalanced_db()), read_only=True) as con:
        rows = con.execute("SELECT name_group, count(DISTINCT template_id), min(n), max(n), "
                           "count(*) FILTER (WHERE ci_tn_low IS NULL) FROM label_rates_template GROUP BY ALL "
                           "ORDER BY ALL").fetchall()
        sums = con.execute("SELECT DISTINCT round(sum(rate), 9) FROM label_rates_template "
                           "GROUP BY name_group, template_id").fetchall()
    assert rows == [("all", 32, 8, 16, 0), ("muslim", 32, 8, 8, 0), ("white", 24, 8, 8, 0)]
    assert sums == [(1.0,)]
