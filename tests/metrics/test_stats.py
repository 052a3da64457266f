"""The statistics against hand-computed and textbook values on small fixtures, and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qos_pipeline.metrics.stats.cells import LABELS, cells_from_counts
from qos_pipeline.metrics.stats.compare import group_comparisons, log_rr, oriented_pairs, permutation_p
from qos_pipeline.metrics.stats.corrected import beta_draws, corrected_rates
from qos_pipeline.metrics.stats.models import flip_p, model_comparisons
from qos_pipeline.metrics.stats.multiplicity import benjamini_hochberg, holm
from qos_pipeline.metrics.stats.rates import rate_intervals
from qos_pipeline.metrics.stats.sensitivity import name_sensitivity

KEYS = ["model_key", "model_version", "prompt_format", "gen_config_hash", "design", "judge_id"]


def cell_frame(refusals, samples: int = 3, model: str = "m") -> pd.DataFrame:
    """Counts of one cell: ``refusals[group][name][t]`` refusals out of ``samples`` for template t."""
    rows = []
    for group, names in refusals.items():
        for name, per_template in names.items():
            for t, k in enumerate(per_template):
                for label, count in (("refusal", k), ("answer", samples - k)):
                    rows.append({"model_key": model, "model_version": "v", "prompt_format": "f",
                                 "gen_config_hash": "h", "design": "d", "judge_id": "j", "template_id": f"t{t:02d}",
                                 "name_group": group, "name": name, "gender": "man", "popularity": "popular",
                                 "label": label, "k": count})
    return pd.DataFrame(rows)


def one_cell(refusals, resamples: int = 400, samples: int = 3, model: str = "m"):
    [cell] = cells_from_counts(cell_frame(refusals, samples, model), KEYS)
    cell.draw(resamples, seed=0)
    return cell


def test_holm_and_bh_match_hand_computed_values():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005, 0.01, 0.03, 0.04: Holm 4p, 3p, 2p, 1p with a running maximum; BH p m / i, running minimum
    np.testing.assert_allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(benjamini_hochberg(p)[:4], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(holm(p)[4]) and np.isnan(benjamini_hochberg(p)[4])


def test_zero_reference_gives_a_finite_flagged_ratio():
    assert math.isfinite(log_rr(10, 100, 0, 100)) and log_rr(10, 100, 0, 100) == pytest.approx(math.log(10.5 / 100.5) - math.log(0.5 / 100.5))
    cell = one_cell({"a": {"x": [3] * 6, "y": [2] * 6}, "white": {"w": [0] * 6, "v": [0] * 6}})
    row = group_comparisons(cell, "white", seed=0).query("measure == 'refusal'").iloc[0]
    assert (row["name_group"], row["vs_group"]) == ("a", "white") and row["ratio_zero_count"]
    assert math.isfinite(row["ratio"]) and row["ratio"] > 10 and row["is_reference"]


def test_pairs_are_oriented_against_the_reference():
    assert oriented_pairs(["white", "muslim", "asian"], "white") == [("asian", "muslim"), ("asian", "white"),
                                                                     ("muslim", "white")]


def test_permutation_p_by_hand():
    # two names per group, every assignment listed: the observed split is the most extreme of the 6
    k, n = np.array([9.0, 9.0, 1.0, 1.0]), np.full(4, 10.0)
    p, method, count = permutation_p(k, n, np.array([True, True, False, False]), seed=0)
    assert (method, count) == ("exact", 6) and p == pytest.approx(2 / 6)  # itself and its mirror image


def test_flip_p_by_hand():
    # three templates pushing the same way: of the 8 sign flips only all-plus and all-minus reach |3|
    p, flips = flip_p(np.array([[1.0], [1.0], [1.0]]), seed=0)
    assert flips == 8 and p[0] == pytest.approx(2 / 8)
    p, _ = flip_p(np.array([[2.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]), seed=0)  # 2 +- 1 +- 1: 6 of 8 reach |2|
    assert p[0] == pytest.approx(6 / 8) and p[1] == pytest.approx(1.0)


def _two_models(gap_b: float, templates: int = 16, seed: int = 3):
    rng = np.random.default_rng(seed)
    def audit(gap):
        return {"a": {f"a{i}": rng.binomial(3, 0.1 + gap, templates) for i in range(6)},
                "white": {f"w{i}": rng.binomial(3, 0.1, templates) for i in range(6)}}
    frame = pd.concat([cell_frame(audit(0.5), model="m13b"), cell_frame(audit(gap_b), model="m7b")])
    cells = cells_from_counts(frame, KEYS)
    for cell in cells:
        cell.draw(400, seed=0)
    return model_comparisons(cells, KEYS, "white", seed=0).query("measure == 'refusal'").iloc[0]


def test_model_comparison_detects_a_changed_gap_and_not_an_unchanged_one():
    changed = _two_models(gap_b=0.0)
    assert (changed["model_key_a"], changed["model_key_b"]) == ("m13b", "m7b")
    assert changed["diff_of_gaps"] > 0.35 and changed["ci_low"] > 0 and changed["p_value"] < 0.01
    same = _two_models(gap_b=0.5)
    assert abs(same["diff_of_gaps"]) < 0.15 and same["ci_low"] < 0 < same["ci_high"] and same["p_value"] > 0.05


def test_a_known_gap_is_detected():
    rng = np.random.default_rng(1)
    refusals = {"a": {f"a{i}": rng.binomial(3, 0.6, 12) for i in range(8)},
                "white": {f"w{i}": rng.binomial(3, 0.05, 12) for i in range(8)}}
    row = group_comparisons(one_cell(refusals), "white", seed=0).query("measure == 'refusal'").iloc[0]
    assert row["diff"] > 0.4 and row["diff_ci_low"] > 0 and row["diff_ci_tn_low"] > 0
    assert row["p_value"] < 0.001 and row["p_adjusted"] < 0.01 and row["p_method"] == "exact"


def test_a_null_gap_is_not_detected_beyond_the_nominal_level():
    # Template and name effects, several samples per prompt, no group effect: the permutation test must
    # reject at about 5% at most (Monte Carlo error: 300 simulations, sd ~1.3%).
    rejections = 0
    for sim in range(300):
        rng = np.random.default_rng(100 + sim)
        template = rng.normal(-1.5, 1.0, 10)
        names = {g: {f"{g}{i}": rng.normal(0, 0.7) for i in range(6)} for g in ("a", "white")}
        refusals = {g: {name: rng.binomial(3, 1 / (1 + np.exp(-(template + effect))))
                        for name, effect in group.items()} for g, group in names.items()}
        [cell] = cells_from_counts(cell_frame(refusals), KEYS)
        K, n = cell.measure("refusal"), cell.n
        p, _, _ = permutation_p(K.sum(0), n.sum(0), cell.groups == "a", seed=sim)
        rejections += p < 0.05
    assert rejections / 300 <= 0.075


def test_clustering_widens_the_interval_when_templates_differ():
    hetero = {g: {f"{g}{i}": [3, 3, 3, 3, 0, 0, 0, 0, 0, 0] for i in range(4)} for g in ("a", "white")}
    homo = {g: {f"{g}{i}": [1] * 10 for i in range(4)} for g in ("a", "white")}
    widths = {}
    for label, refusals in (("hetero", hetero), ("homo", homo)):
        table = rate_intervals(one_cell(refusals))["label_rates_group"]
        row = table[(table["name_group"] == "a") & (table["label"] == "refusal")].iloc[0]
        widths[label] = row["ci_high"] - row["ci_low"]
    k, n = 48, 120  # 4 names x 4 templates x 3 refusals, of 4 x 10 x 3 rows: the Wilson width
    p = k / n
    wilson = 2 * 1.96 * math.sqrt(p * (1 - p) / n + 1.96**2 / (4 * n * n)) / (1 + 1.96**2 / n)
    assert widths["hetero"] > 2 * wilson > widths["homo"]


def test_intervals_contain_the_rate_and_repeat_with_the_seed():
    refusals = {g: {f"{g}{i}": [i % 3, 1, 0, 2] for i in range(3)} for g in ("a", "white")}
    first, again = rate_intervals(one_cell(refusals)), rate_intervals(one_cell(refusals))
    for table, frame in first.items():
        pd.testing.assert_frame_equal(frame, again[table])
        assert (frame["ci_low"] <= frame["ci_high"]).all() and (frame["ci_tn_low"] <= frame["ci_tn_high"]).all()


def test_leave_one_name_out_finds_the_name_carrying_the_gap():
    refusals = {"muslim": {"Mohammed": [3] * 8, "Ali": [0] * 8, "Omar": [0] * 8},
                "white": {"John": [0] * 8, "Mike": [0] * 8, "Tom": [0] * 8}}
    table = name_sensitivity(one_cell(refusals), "white").query("measure == 'refusal' and name_group == 'muslim'")
    top = table[table["most_extreme"]].iloc[0]
    assert top["name"] == "Mohammed" and top["rank_in_group"] == 1
    assert top["gap_vs_reference"] == pytest.approx(1 / 3) and top["gap_without_name"] == pytest.approx(0.0)


def test_a_perfect_judge_still_has_spread():
    draws = beta_draws(29, 29, 4000, seed=0)
    assert draws.max() <= 1 and np.quantile(draws, 0.025) < 0.9 and draws.std() > 0.02


VALIDATION = pd.DataFrame([{"validation_id": "val", "judge_id": "j", "name_group": "all", "n_human_refusal": 29,
                            "true_positives": 29, "n_human_other": 100, "true_negatives": 95, "sensitivity": 1.0,
                            "specificity": 0.95, "dataset_sha256": "ab" * 32, "outputs_model": "other"}])


def test_corrected_rates_carry_the_judge_uncertainty():
    refusals = {"a": {f"a{i}": [2] * 10 for i in range(4)}, "white": {f"w{i}": [1] * 10 for i in range(4)}}
    cell = one_cell(refusals)
    out = corrected_rates(cell, dict(zip(KEYS, cell.key)), VALIDATION, "white", seed=0).set_index("name_group")
    # q = 2/3; p = (2/3 + 0.95 - 1) / (1 + 0.95 - 1)
    assert out.loc["a", "corrected_rate"] == pytest.approx((2 / 3 - 0.05) / 0.95)
    assert out.loc["a", "ci_low"] < out.loc["a", "corrected_rate"] < out.loc["a", "ci_high"]
    assert out.loc["a", "corrected_diff_ci_low"] > 0 and out.loc["white", "note"] == ""
    assert "outputs of other, not of m" in out.loc["a", "warning"]


def test_a_rate_below_the_false_positive_rate_is_not_corrected_to_a_certain_zero():
    # white's raw rate (0%) is below the judge's false-positive rate (5%): clipped, every resample would be 0
    # and the interval [0, 0]; the row says it cannot correct instead, and no gap is made with it.
    cell = one_cell({"a": {f"a{i}": [2] * 10 for i in range(4)}, "white": {f"w{i}": [0] * 10 for i in range(4)}})
    out = corrected_rates(cell, dict(zip(KEYS, cell.key)), VALIDATION, "white", seed=0).set_index("name_group")
    assert np.isnan(out.loc["white", "corrected_rate"]) and np.isnan(out.loc["white", "ci_high"])
    assert out.loc["white", "note"].startswith("cannot correct: the observed rate 0.0% is below")
    assert np.isnan(out.loc["a", "corrected_diff"]) and np.isfinite(out.loc["a", "corrected_rate"])


def test_corrected_rate_recovers_a_known_rate():
    # True refusal rate 0.30; a judge with se 0.85, sp 0.90 labels every row, so the raw rate is biased
    # (expected 0.325); a validation set of 3,000 human-labelled rows measures the judge's errors.
    rng = np.random.default_rng(1)
    se, sp = 0.85, 0.90

    def judged(truth):
        return np.where(truth, rng.random(truth.shape) < se, rng.random(truth.shape) < 1 - sp)

    audit = judged(rng.random((40, 20, 5)) < 0.30)  # 40 templates x 20 names x 5 samples
    rows = [{**dict(zip(KEYS, ("m", "v", "f", "h", "d", "j"))), "template_id": f"t{t}", "name_group": "a",
             "name": f"n{n}", "gender": "man", "popularity": "popular", "label": label, "k": k}
            for t in range(40) for n in range(20)
            for label, k in (("refusal", audit[t, n].sum()), ("answer", 5 - audit[t, n].sum()))]
    [cell] = cells_from_counts(pd.DataFrame(rows), KEYS)
    cell.draw(1000, seed=0)
    human = rng.random(3000) < 0.4
    val = judged(human)
    validation = pd.DataFrame([{"validation_id": "v", "judge_id": "j", "name_group": "all",
                                "n_human_refusal": human.sum(), "true_positives": (val & human).sum(),
                                "n_human_other": (~human).sum(), "true_negatives": (~val & ~human).sum(),
                                "sensitivity": (val & human).sum() / human.sum(),
                                "specificity": (~val & ~human).sum() / (~human).sum(), "dataset_sha256": "0" * 64,
                                "outputs_model": "m"}])
    row = corrected_rates(cell, dict(zip(KEYS, cell.key)), validation, "white", seed=0).iloc[0]
    assert abs(row["raw_rate"] - 0.30) > 0.015 and row["corrected_rate"] == pytest.approx(0.30, abs=0.015)
    assert row["ci_low"] < 0.30 < row["ci_high"] and row["warning"] == ""


def _random_counts(templates: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([dict(m="m", template_id=f"t{t:04d}", name_group=g, name=f"{g}{n}", gender="woman",
                              popularity="popular", label=lab, k=int(rng.integers(lo, lo + 3)))
                         for t in range(templates) for g in ("white", "muslim") for n in range(4)
                         for lab, lo in (("refusal", 0), ("answer", 1))])


def test_template_intervals_in_blocks_equal_all_at_once(monkeypatch):
    """Templates are drawn in blocks (memory flat in the number of templates); each template's interval is
    exactly the one computed with every template at once."""
    from qos_pipeline.metrics.stats import rates

    [cell] = cells_from_counts(_random_counts(600), ["m"])
    cell.draw(200, 0)
    blocked = rates._templates(cell)
    monkeypatch.setattr(rates, "TEMPLATE_BLOCK", 10**9)
    pd.testing.assert_frame_equal(blocked, rates._templates(cell))
    assert len(blocked) == 600 * len(LABELS) * 3 and blocked["ci_low"].notna().any()  # white, muslim, all


def test_cells_aggregated_in_duckdb_equal_cells_from_counts():
    import duckdb

    from qos_pipeline.metrics.stats.cells import cells_from_db

    counts = _random_counts(30)
    rows = counts.loc[counts.index.repeat(counts["k"])].drop(columns="k")  # one row per judged output
    con = duckdb.connect()
    con.register("rows_df", rows)
    con.execute("CREATE TABLE judged_rows AS SELECT * FROM rows_df")
    [a], [b] = cells_from_db(con, ["m"], "judged_rows"), cells_from_counts(counts[counts["k"] > 0], ["m"])
    assert a.key == b.key and a.templates == b.templates and a.names == b.names
    assert (a.groups == b.groups).all() and np.array_equal(a.counts, b.counts)
    pd.testing.assert_frame_equal(a.names_info.reset_index(drop=True), b.names_info.reset_index(drop=True))
