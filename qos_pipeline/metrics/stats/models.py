"""Model comparisons paired by prompt: is group g's gap to the reference larger for model A than for B?

Two cells are compared when they share prompt format and judge and the same prompts (``comparable_groups``:
the same templates and the same names per group; a design is its prompt set, so two recorded files of the
same prompts compare whatever their file names): 7b vs 13b, a checkpoint vs its predecessor, greedy vs
sampled. Each gap is taken on the templates its two groups share in both cells. The statistic is the
difference of the two gaps (a difference in differences); its intervals come from the cluster bootstrap
with the same draws for both cells (the pairing), and its p-value from flipping, template by template,
which model a template's prompts belong to (under "the models behave alike on every prompt" the two are
exchangeable within a template; every flip enumerated up to 2^14, else 10,000 seeded ones). Flipping whole
templates matches the bootstrap's cluster (a template moves all its names together) and keeps the test
valid when a template's prompts are correlated. The statistic weighs prompts equally; with equal samples
per prompt it is the pooled one. One set of flips (drawn from the seed, not the data) serves every measure,
group and pair of cells with the same number of templates.
p-values are adjusted within each pair of cells and family: the primary measure's gaps, then the rest
(exploratory).
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import MEASURES, Cell
from qos_pipeline.metrics.stats.design import shared_templates
from qos_pipeline.metrics.stats.draws import percentile_interval
from qos_pipeline.metrics.stats.multiplicity import PRIMARY_MEASURE, adjust_within, family

FLIPS = 10_000
EXACT_TEMPLATES = 14
SIDE = ["model_key", "model_version", "gen_config_hash", "design"]
SHARED = ["prompt_format", "judge_id"]


def _names(cell: Cell, group: str) -> np.ndarray:
    return np.flatnonzero(cell.groups == group)


def _same_prompts(a: Cell, b: Cell, groups: list[str]) -> bool:
    return a.templates == b.templates and all(
        [a.names[i] for i in _names(a, g)] == [b.names[i] for i in _names(b, g)] for g in groups)


def comparable_groups(a: Cell, b: Cell, reference: str) -> list[str]:
    """The non-reference groups whose gaps the two cells can compare: both cells hold the same prompts for
    them and for the reference group (same templates, same names per group: the same prompt ids, since a
    prompt id hashes the template filled with the name). Empty when the cells are not comparable."""
    common = set(a.groups) & set(b.groups)
    groups = [g for g in sorted(common) if g != reference]
    if reference not in common or not _same_prompts(a, b, groups + [reference]):
        return []
    return groups


def _shared(a: Cell, b: Cell, group: str, reference: str) -> np.ndarray:
    """(T,) templates every name of the group and of the reference group carries in both cells."""
    return (shared_templates(a.n, a.groups == group, a.groups == reference)
            & shared_templates(b.n, b.groups == group, b.groups == reference))


def _gap(cell: Cell, measure: str, group: str, reference: str, mask: np.ndarray) -> float:
    K, n = cell.measure(measure)[mask], cell.n[mask]
    g, r = _names(cell, group), _names(cell, reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(K[:, g].sum() / n[:, g].sum() - K[:, r].sum() / n[:, r].sum())


def _gap_draws(cell: Cell, measure: str, group: str, reference: str, by_name: bool, mask: np.ndarray) -> np.ndarray:
    kg, ng = cell.group_draws(measure, by_name, mask)
    g, r = cell.group_list.index(group), cell.group_list.index(reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        return kg[:, g] / ng[:, g] - kg[:, r] / ng[:, r]


def _flips(templates: int, rng: np.random.Generator) -> np.ndarray:
    """(F, T) signs: every flip when 2^T is small, else FLIPS seeded ones."""
    if templates <= EXACT_TEMPLATES:
        return 1.0 - 2.0 * ((np.arange(2 ** templates)[:, None] >> np.arange(templates)) & 1)
    return rng.choice([-1.0, 1.0], size=(FLIPS, templates))


def _contributions(a: Cell, b: Cell, measure: str, group: str, reference: str, mask: np.ndarray) -> np.ndarray:
    """(T,) each template's share of the difference of prompt-mean gaps (prompts weighted equally; templates
    outside ``mask`` add nothing)."""
    ka, kb, na, nb = a.measure(measure), b.measure(measure), a.n, b.n
    weights = np.zeros(na.shape)
    for side, sign in ((group, 1.0), (reference, -1.0)):
        idx = _names(a, side)
        valid = (na[:, idx] > 0) & (nb[:, idx] > 0) & mask[:, None]
        weights[:, idx] = np.where(valid, sign / max(valid.sum(), 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((ka / na - kb / nb) * weights).sum(axis=1)


def flip_p(contributions: np.ndarray, seed: int, signs: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Two-sided p-values of the sums of ``contributions`` (T, tests), flipping templates' signs (``signs``:
    flips drawn beforehand for T templates, shared by every pair of cells; drawn from ``seed`` if None)."""
    contributions = np.asarray(contributions, dtype=float).reshape(contributions.shape[0], -1)
    if signs is None:
        signs = _flips(contributions.shape[0], np.random.default_rng(seed))
    extreme = (np.abs(signs @ contributions) >= np.abs(contributions.sum(axis=0)) - 1e-12).sum(axis=0)
    if len(signs) == 2 ** contributions.shape[0]:  # exact
        return extreme / len(signs), len(signs)
    return (1 + extreme) / (1 + len(signs)), len(signs)


def _pair_rows(a: Cell, b: Cell, keys: list[str], reference: str, seed: int, flips: dict) -> list[dict]:
    rows, key_a, key_b = [], dict(zip(keys, a.key)), dict(zip(keys, b.key))
    groups = comparable_groups(a, b, reference)
    base = {**{f"{k}_a": key_a[k] for k in SIDE}, **{f"{k}_b": key_b[k] for k in SIDE},
            **{k: key_a[k] for k in SHARED}}
    draws: dict[str, list[np.ndarray]] = {"": [], "_tn": []}
    masks = {g: _shared(a, b, g, reference) for g in groups}
    for measure, group in itertools.product(MEASURES, groups):
        mask = masks[group]
        gap_a, gap_b = _gap(a, measure, group, reference, mask), _gap(b, measure, group, reference, mask)
        rows.append({**base, "measure": measure, "name_group": group, "vs_group": reference, "gap_a": gap_a,
                     "gap_b": gap_b, "diff_of_gaps": gap_a - gap_b, "shared_templates": int(mask.sum())})
        for suffix, by_name in (("", False), ("_tn", True)):
            draws[suffix].append(_gap_draws(a, measure, group, reference, by_name, mask)
                                 - _gap_draws(b, measure, group, reference, by_name, mask))
    if not rows:
        return rows
    points = np.array([r["diff_of_gaps"] for r in rows])
    for suffix, columns in draws.items():  # one quantile pass per kind of resample for the whole pair
        low, high = percentile_interval(np.stack(columns, axis=1), points)
        for row, lo, hi in zip(rows, low, high):
            row.update({f"ci{suffix}_low": float(lo), f"ci{suffix}_high": float(hi)})
    templates = len(a.templates)
    if templates not in flips:  # drawn without looking at the data, so one set serves every pair
        digest = hashlib.sha256(repr((seed, templates)).encode()).digest()
        flips[templates] = _flips(templates, np.random.default_rng(int.from_bytes(digest[:8], "big")))
    contributions = np.stack([_contributions(a, b, r["measure"], r["name_group"], reference, masks[r["name_group"]])
                              for r in rows], axis=1)
    p, count = flip_p(contributions, seed, flips[templates])
    for row, value in zip(rows, p):
        row.update(p_value=float(value), flips=count)
    return rows


def comparable_sets(cells: list[Cell], keys: list[str]) -> list[list[Cell]]:
    """Cells that may be compared with each other: the same prompt format and judge (whether two of them
    share their prompts is ``comparable_groups``'s to say), each list ordered by cell key."""
    by_shared: dict[tuple, list[Cell]] = {}
    for cell in cells:
        by_shared.setdefault(tuple(dict(zip(keys, cell.key))[k] for k in SHARED), []).append(cell)
    return [sorted(group, key=lambda c: c.key) for _, group in sorted(by_shared.items())]


def compare_pair(a: Cell, b: Cell, keys: list[str], reference: str, seed: int, p_adjust: str = "holm",
                 primary_measure: str = PRIMARY_MEASURE, flips: dict | None = None) -> pd.DataFrame:
    """Cell A against cell B (gap of A minus gap of B), every group they can compare and every refusal
    measure, p-values adjusted within the pair and family; empty when the two do not share their prompts.
    ``flips``: template sign flips by number of templates, shared between calls (drawn when missing)."""
    pair = pd.DataFrame(_pair_rows(a, b, keys, reference, seed, {} if flips is None else flips))
    if len(pair):
        pair["family"] = [family(m, True, primary_measure) for m in pair["measure"]]
        pair["p_adjusted"] = adjust_within(pair["p_value"].to_numpy(), pair["family"].to_numpy(), p_adjust)
        pair["p_adjust_method"] = p_adjust
    return pair


def model_comparisons(cells: list[Cell], keys: list[str], reference: str, seed: int, p_adjust: str = "holm",
                      primary_measure: str = PRIMARY_MEASURE) -> pd.DataFrame:
    """Every pair of comparable cells, every non-reference group, every refusal measure."""
    frames: list[pd.DataFrame] = []
    flips: dict[int, np.ndarray] = {}
    for group in comparable_sets(cells, keys):
        for a, b in itertools.combinations(group, 2):
            pair = compare_pair(a, b, keys, reference, seed, p_adjust, primary_measure, flips)
            if len(pair):
                frames.append(pair)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
