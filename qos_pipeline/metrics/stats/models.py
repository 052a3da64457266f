"""Model comparisons paired by prompt: is group g's gap to the reference larger for model A than for B?

Two cells are compared when they share prompt format, design and judge, and the same templates and names
(the same prompts): 7b vs 13b, a checkpoint vs its predecessor, greedy vs sampled. The statistic is the
difference of the two gaps (a difference in differences); its intervals come from the cluster bootstrap
with the same draws for both cells (the pairing), and its p-value from flipping, prompt by prompt, which
model a prompt's rate belongs to (under "the models behave alike on every prompt" the two are exchangeable
within a prompt; 10,000 seeded flips). That test weighs prompts equally; with equal samples per prompt it
is the same statistic as the pooled one. p-values are Holm-adjusted within each pair of cells.
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import MEASURES, Cell
from qos_pipeline.metrics.stats.draws import percentile_interval
from qos_pipeline.metrics.stats.multiplicity import adjust

FLIPS = 10_000
SIDE = ["model_key", "model_version", "gen_config_hash"]
SHARED = ["prompt_format", "design", "judge_id"]


def _names(cell: Cell, group: str) -> np.ndarray:
    return np.flatnonzero(cell.groups == group)


def _same_prompts(a: Cell, b: Cell, groups: list[str]) -> bool:
    return a.templates == b.templates and all(
        [a.names[i] for i in _names(a, g)] == [b.names[i] for i in _names(b, g)] for g in groups)


def _gap(cell: Cell, measure: str, group: str, reference: str) -> float:
    K, n = cell.measure(measure), cell.n
    g, r = _names(cell, group), _names(cell, reference)
    return float(K[:, g].sum() / n[:, g].sum() - K[:, r].sum() / n[:, r].sum())


def _gap_draws(cell: Cell, measure: str, group: str, reference: str, weights: np.ndarray) -> np.ndarray:
    K, n, W = cell.measure(measure), cell.n, cell.draws["W"]
    kw, nw = (W @ K) * weights, (W @ n) * weights
    g, r = _names(cell, group), _names(cell, reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        return kw[:, g].sum(1) / nw[:, g].sum(1) - kw[:, r].sum(1) / nw[:, r].sum(1)


def flip_p(a: Cell, b: Cell, measure: str, group: str, reference: str, seed: int) -> float:
    """Two-sided p-value of the difference of prompt-mean gaps, flipping model labels per prompt."""
    ka, kb, na, nb = a.measure(measure), b.measure(measure), a.n, b.n
    weights = np.zeros(na.shape)
    for side, sign in ((group, 1.0), (reference, -1.0)):
        idx = _names(a, side)
        valid = (na[:, idx] > 0) & (nb[:, idx] > 0)
        weights[:, idx] = np.where(valid, sign / max(valid.sum(), 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        contrib = np.nan_to_num((ka / na - kb / nb) * weights).ravel()
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(FLIPS, contrib.size))
    observed = contrib.sum()
    return float((1 + (np.abs(signs @ contrib) >= abs(observed) - 1e-12).sum()) / (1 + FLIPS))


def _pair_rows(a: Cell, b: Cell, keys: list[str], reference: str, seed: int) -> list[dict]:
    rows, key_a, key_b = [], dict(zip(keys, a.key)), dict(zip(keys, b.key))
    groups = [g for g in sorted(set(a.groups) & set(b.groups)) if g != reference]
    if reference not in set(a.groups) & set(b.groups) or not _same_prompts(a, b, groups + [reference]):
        return rows
    base = {**{f"{k}_a": key_a[k] for k in SIDE}, **{f"{k}_b": key_b[k] for k in SIDE},
            **{k: key_a[k] for k in SHARED}}
    for measure, group in itertools.product(MEASURES, groups):
        gap_a, gap_b = _gap(a, measure, group, reference), _gap(b, measure, group, reference)
        row = {**base, "measure": measure, "name_group": group, "vs_group": reference, "gap_a": gap_a, "gap_b": gap_b,
               "diff_of_gaps": gap_a - gap_b}
        for suffix, weights in (("", np.ones_like(a.draws["V"])), ("_tn", a.draws["V"])):
            did = _gap_draws(a, measure, group, reference, weights) - _gap_draws(b, measure, group, reference, weights)
            low, high = percentile_interval(did, np.array(row["diff_of_gaps"]))
            row.update({f"ci{suffix}_low": float(low), f"ci{suffix}_high": float(high)})
        digest = hashlib.sha256(repr((seed, a.key, b.key, measure, group)).encode()).digest()
        row.update(p_value=flip_p(a, b, measure, group, reference, int.from_bytes(digest[:8], "big")), flips=FLIPS)
        rows.append(row)
    return rows


def model_comparisons(cells: list[Cell], keys: list[str], reference: str, seed: int, p_adjust: str = "holm"
                      ) -> pd.DataFrame:
    """Every pair of comparable cells, every non-reference group, every refusal measure."""
    frames = []
    by_shared: dict[tuple, list[Cell]] = {}
    for cell in cells:
        by_shared.setdefault(tuple(dict(zip(keys, cell.key))[k] for k in SHARED), []).append(cell)
    for group in by_shared.values():
        for a, b in itertools.combinations(sorted(group, key=lambda c: c.key), 2):
            pair = pd.DataFrame(_pair_rows(a, b, keys, reference, seed))
            if len(pair):
                pair["p_adjusted"], pair["p_adjust_method"] = adjust(pair["p_value"].to_numpy(), p_adjust), p_adjust
                frames.append(pair)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
