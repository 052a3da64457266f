"""Name sensitivity: how much one name carries its group's gap.

Per name: its rate of each refusal measure with a template-cluster interval, its rank within its group
(1 = refuses most), and, for a group other than the reference, the group's gap to the reference group
recomputed without that name. The name whose removal moves the gap most is flagged ``most_extreme``: a gap
that shrinks a lot without it rests on one name (the pilot's Mohammed), not on the group. Gaps are taken on
the templates the group shares with the reference group, as in ``group_comparisons``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import MEASURES, Cell
from qos_pipeline.metrics.stats.design import shared_templates
from qos_pipeline.metrics.stats.draws import percentile_interval


def _group_frame(cell: Cell, measure: str, group: str, reference: str, low: np.ndarray, high: np.ndarray
                 ) -> pd.DataFrame:
    """The group's names, vectorized: the gap without each name is (K - k_i) / (N - n_i) - reference, all
    on the templates the group shares with the reference group."""
    mine, ref = np.flatnonzero(cell.groups == group), cell.groups == reference
    shared = shared_templates(cell.n, cell.groups == group, ref)
    k, n = cell.measure(measure)[shared].sum(0), cell.n[shared].sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_rate = k[ref].sum() / n[ref].sum() if ref.any() else np.nan
        K, N = k[mine].sum(), n[mine].sum()
        gap = K / N - ref_rate if group != reference else np.nan
        k_all, n_all = cell.measure(measure).sum(0)[mine], cell.n.sum(0)[mine]
        rates = k_all / n_all
        without = (K - k[mine]) / (N - n[mine]) - ref_rate
    if len(mine) < 2 or group == reference:
        without = np.full(len(mine), np.nan)
    shift = without - gap
    magnitude = np.where(np.isfinite(shift), np.abs(shift), -1)
    extreme = np.zeros(len(mine), dtype=bool)
    if len(mine) and magnitude.max() >= 0:
        extreme[int(magnitude.argmax())] = True
    return pd.DataFrame({
        "measure": measure, "name_group": group, "name": np.asarray(cell.names, dtype=object)[mine],
        "gender": cell.names_info["gender"].to_numpy()[mine],
        "popularity": cell.names_info["popularity"].to_numpy()[mine],
        "k": k_all.astype(np.int64), "n": n_all.astype(np.int64), "rate": rates,
        "ci_low": low[mine], "ci_high": high[mine],
        "rank_in_group": pd.Series(-rates).rank(method="min").astype(int).to_numpy(), "names_in_group": len(mine),
        "gap_vs_reference": gap, "gap_without_name": without, "shift": shift, "most_extreme": extreme})


def name_sensitivity(cell: Cell, reference: str) -> pd.DataFrame:
    """One row per (measure, name) of the cell."""
    W, frames = cell.draws["W"], []
    for measure in MEASURES:
        K = cell.measure(measure)
        k, n = K.sum(0), cell.n.sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            low, high = percentile_interval((W @ K) / (W @ cell.n), k / n)
        for group in cell.group_list:
            frames.append(_group_frame(cell, measure, group, reference, low, high))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
