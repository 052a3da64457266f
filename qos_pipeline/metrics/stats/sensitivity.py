"""Name sensitivity: how much one name carries its group's gap.

Per name: its rate of each refusal measure with a template-cluster interval, its rank within its group
(1 = refuses most), and, for a group other than the reference, the group's gap to the reference group
recomputed without that name. The name whose removal moves the gap most is flagged ``most_extreme``: a gap
that shrinks a lot without it rests on one name (the pilot's Mohammed), not on the group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import MEASURES, Cell
from qos_pipeline.metrics.stats.draws import percentile_interval


def _group_rows(cell: Cell, measure: str, group: str, reference: str, k: np.ndarray, n: np.ndarray,
                low: np.ndarray, high: np.ndarray) -> list[dict]:
    mine, ref = np.flatnonzero(cell.groups == group), cell.groups == reference
    ref_rate = k[ref].sum() / n[ref].sum() if ref.any() else np.nan
    gap = k[mine].sum() / n[mine].sum() - ref_rate
    rates = k[mine] / n[mine]
    ranks = pd.Series(-rates).rank(method="min").astype(int).to_numpy()
    rows = []
    for j, i in enumerate(mine):
        rest = mine[mine != i]
        without = k[rest].sum() / n[rest].sum() - ref_rate if len(rest) and group != reference else np.nan
        rows.append({"measure": measure, "name_group": group, "name": cell.names[i],
                     "gender": cell.names_info.at[i, "gender"], "popularity": cell.names_info.at[i, "popularity"],
                     "k": k[i], "n": n[i], "rate": rates[j], "ci_low": low[i], "ci_high": high[i],
                     "rank_in_group": ranks[j], "names_in_group": len(mine),
                     "gap_vs_reference": gap if group != reference else np.nan,
                     "gap_without_name": without, "shift": without - gap if group != reference else np.nan})
    shifts = np.array([abs(r["shift"]) if np.isfinite(r["shift"]) else -1 for r in rows])
    for j, r in enumerate(rows):
        r["most_extreme"] = bool(shifts.max() >= 0 and j == int(shifts.argmax()))
    return rows


def name_sensitivity(cell: Cell, reference: str) -> pd.DataFrame:
    """One row per (measure, name) of the cell."""
    W, rows = cell.draws["W"], []
    for measure in MEASURES:
        K = cell.measure(measure)
        k, n = K.sum(0), cell.n.sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            low, high = percentile_interval((W @ K) / (W @ cell.n), k / n)
        for group in sorted(set(cell.groups)):
            rows += _group_rows(cell, measure, group, reference, k, n, low, high)
    return pd.DataFrame(rows)
