"""Cluster-bootstrap intervals of every label rate of the ``label_rates_*`` tables.

Two intervals per rate: ``ci_low``/``ci_high`` resample templates (the design's shared unit: a template
that elicits refusals moves every group's rate), ``ci_tn_low``/``ci_tn_high`` resample templates and,
independently, the names within each group (a name such as Mohammed moves its whole group). Within a
(template, name) slot every sample stays together. A rate of one name resamples templates only; a rate of
one template (per group, or pooled) resamples names only. The naive Wilson interval stays beside them
(``wilson_low``/``_high``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import LABELS, Cell
from qos_pipeline.metrics.stats.draws import percentile_interval

POOLED = "all"
MIN_CLUSTERS = 2


def _estimable(low: np.ndarray, high: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    few = np.broadcast_to(np.asarray(clusters).reshape(-1, *([1] * (low.ndim - 1))) < MIN_CLUSTERS, low.shape)
    low, high = low.copy(), high.copy()
    low[few], high[few] = np.nan, np.nan
    return low, high


def _slices(cell: Cell, column: str, pooled: bool) -> list[tuple[dict, np.ndarray]]:
    """(dims, name mask) of every (group, value of ``column``) slice, plus the pooled group 'all'."""
    info, out = cell.names_info, []
    for (group, value), part in info.groupby(["name_group", column], sort=True):
        out.append(({"name_group": group, column: value}, info.index.isin(part.index)))
    if pooled:
        for value, part in info.groupby(column, sort=True):
            out.append(({"name_group": POOLED, column: value}, info.index.isin(part.index)))
    return out


def _interval_rows(cell: Cell, dims: list[dict], num: np.ndarray, den: np.ndarray, point: np.ndarray,
                   prefix: str, clusters: np.ndarray) -> list[dict]:
    """Rows of (dims, label, interval) from draws ``num`` (B, S, L) / ``den`` (B, S); no interval for a
    slice with fewer than two clusters, whose resamples could not vary."""
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = num / den[:, :, None]
    low, high = _estimable(*percentile_interval(draws, point), clusters)
    return [{**d, "label": lab, f"{prefix}_low": low[s, i], f"{prefix}_high": high[s, i]}
            for s, d in enumerate(dims) for i, lab in enumerate(LABELS)]


def _resampled_counts(cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """(B, N, L) label counts and (B, N) rows per name with templates resampled (one BLAS product)."""
    if "resampled_counts" not in cell.draws:
        T, N, L = cell.counts.shape
        W = cell.draws["W"]
        cell.draws["resampled_counts"] = (W @ cell.counts.reshape(T, N * L)).reshape(len(W), N, L), W @ cell.n
    return cell.draws["resampled_counts"]


def _masked(cell: Cell, masks: np.ndarray, dims: list[dict]) -> pd.DataFrame:
    """Both intervals for slices of names (masks: (S, N)) over every template."""
    V = cell.draws["V"]
    cw, nw = _resampled_counts(cell)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = (masks @ cell.counts.sum(axis=0)) / (cell.n @ masks.T).sum(axis=0)[:, None]
    templates = ((cell.n @ masks.T) > 0).sum(axis=0)  # templates with rows in each slice
    template = _interval_rows(cell, dims, masks @ cw, nw @ masks.T, point, "ci", templates)
    both = _interval_rows(cell, dims, masks @ (cw * V[:, :, None]), (nw * V) @ masks.T, point, "ci_tn", templates)
    return pd.DataFrame(template).merge(pd.DataFrame(both), on=[*dims[0], "label"])


def _names(cell: Cell) -> pd.DataFrame:
    """One name: its templates are the only cluster (both columns alike)."""
    cw, nw = _resampled_counts(cell)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws, point = cw / nw[:, :, None], cell.counts.sum(0) / cell.n.sum(0)[:, None]
    low, high = _estimable(*percentile_interval(draws, point), (cell.n > 0).sum(axis=0))
    rows = [{"name_group": cell.groups[j], "name": name, "label": lab, "ci_low": low[j, i], "ci_high": high[j, i],
             "ci_tn_low": low[j, i], "ci_tn_high": high[j, i]}
            for j, name in enumerate(cell.names) for i, lab in enumerate(LABELS)]
    return pd.DataFrame(rows)


TEMPLATE_BLOCK = 256
"""Templates whose draws are held at once: (resamples, templates, labels) for thousands of templates is
hundreds of MB, and each template's interval is computed alone anyway."""


def _template_draws(V: np.ndarray, counts: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resampled label counts (B, Tb, L) and rows (B, Tb) of a block of templates, resampling the names
    given (``V``: (B, N') weights, ``counts``: (Tb, N', L), ``n``: (Tb, N'))."""
    Tb, N, L = counts.shape
    return (V @ counts.transpose(1, 0, 2).reshape(N, Tb * L)).reshape(len(V), Tb, L), V @ n.T


def _template_intervals(num: np.ndarray, den: np.ndarray, counts: np.ndarray, n: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        draws, point = num / den[:, :, None], counts.sum(1) / n.sum(1)[:, None]
    return _estimable(*percentile_interval(draws, point), (n > 0).sum(axis=1))


def _templates(cell: Cell) -> pd.DataFrame:
    """One template, per group and pooled ('all'): its names (within their groups) are the only cluster
    (both columns alike). The pooled draws are the sum of the groups' (names are resampled within groups)."""
    V = cell.draws["V"]
    T, N, L = cell.counts.shape
    slices = [(g, cell.groups == g) for g in cell.group_list] + [(POOLED, np.ones(N, dtype=bool))]
    lows: dict[str, list[np.ndarray]] = {g: [] for g, _ in slices}
    highs: dict[str, list[np.ndarray]] = {g: [] for g, _ in slices}
    for start in range(0, T, TEMPLATE_BLOCK):
        block = slice(start, start + TEMPLATE_BLOCK)
        num_all: Any = 0.0  # the sum of the groups' (B, T) draws
        den_all: Any = 0.0
        for group, mask in slices:
            counts, n = cell.counts[block][:, mask], cell.n[block][:, mask]
            if group == POOLED:
                num, den = num_all, den_all
            else:
                num, den = _template_draws(V[:, mask], counts, n)
                num_all, den_all = num_all + num, den_all + den
            low, high = _template_intervals(num, den, counts, n)
            lows[group].append(low)
            highs[group].append(high)
    rows = []
    for group, _ in slices:
        low, high = (np.concatenate(lows[group]), np.concatenate(highs[group])) if T else (np.empty((0, L)),) * 2
        rows += [{"name_group": group, "template_id": t, "label": lab, "ci_low": low[j, i], "ci_high": high[j, i],
                  "ci_tn_low": low[j, i], "ci_tn_high": high[j, i]}
                 for j, t in enumerate(cell.templates) for i, lab in enumerate(LABELS)]
    return pd.DataFrame(rows)


def rate_intervals(cell: Cell) -> dict[str, pd.DataFrame]:
    """Interval columns of every ``label_rates_*`` table for one cell (keys: the table's dimensions and
    ``label``; the cell's keys are added by the caller)."""
    everyone = np.ones((1, len(cell.names)))
    groups = cell.group_list
    by_group = np.array([cell.groups == g for g in groups], dtype=float)
    out = {
        "label_rates_model": _masked(cell, everyone, [{"_": 0}]).drop(columns="_"),
        "label_rates_group": _masked(cell, by_group, [{"name_group": g} for g in groups]),
        "label_rates_name": _names(cell),
        "label_rates_template": _templates(cell),
    }
    for table, column in (("label_rates_popularity", "popularity"), ("label_rates_gender", "gender")):
        dims, masks = zip(*_slices(cell, column, pooled=True))
        out[table] = _masked(cell, np.array(masks, dtype=float), list(dims))
    return out
