"""Checkpoint changes: did a checkpoint's gaps move against the previous checkpoint of its training run, and
against the run's first?

The comparison is ``models.compare_pair`` (the same paired machinery as ``model_comparisons``: difference of
gaps on the shared templates, paired cluster-bootstrap intervals, whole-template flip p-value adjusted
within the pair and family), oriented so that A is always the later checkpoint: ``diff_of_gaps`` > 0 means
the group's gap to the reference group grew.

A checkpoint is compared only with checkpoints of its family (``checkpoints`` table: family and order)
whose cells share prompt format, judge, sampling config and prompts: a change of sampling settings or
judge between two checkpoints would otherwise read as a change of the model. The previous checkpoint is
the nearest earlier one that can be compared; the first, the earliest that can.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.cells import Cell
from qos_pipeline.metrics.stats.models import comparable_groups, comparable_sets, compare_pair
from qos_pipeline.metrics.stats.multiplicity import PRIMARY_MEASURE

PREVIOUS, FIRST = "previous", "first"


def sequences(cells: list[Cell], keys: list[str], lineage: pd.DataFrame) -> list[tuple[str, list[tuple[int, Cell]]]]:
    """(family, [(order, cell), ...] by order) for every run of cells that may be compared with each other:
    one family, prompt format, judge and sampling config. ``lineage``: model_key, checkpoint_family,
    checkpoint_order."""
    place = dict(zip(lineage["model_key"], zip(lineage["checkpoint_family"], lineage["checkpoint_order"].astype(int))))
    out = []
    for group in comparable_sets(cells, keys):
        runs: dict[tuple, list[tuple[int, Cell]]] = {}
        for cell in group:
            key = dict(zip(keys, cell.key))
            if key["model_key"] in place:
                fam, order = place[key["model_key"]]
                runs.setdefault((fam, key["gen_config_hash"]), []).append((order, cell))
        out += [(fam, sorted(run, key=lambda item: (item[0], item[1].key))) for (fam, _), run in sorted(runs.items())]
    return out


def pairs(run: list[tuple[int, Cell]], reference: str) -> list[tuple[str, tuple[int, Cell], tuple[int, Cell]]]:
    """(against, later, earlier) for each checkpoint of a run: its previous comparable checkpoint and the
    run's first comparable one (both rows even when they are the same checkpoint, so that every checkpoint
    but the first has one row of each)."""
    found = []
    for i, (order, cell) in enumerate(run):
        earlier = [(o, c) for o, c in run[:i] if o < order and comparable_groups(cell, c, reference)]
        if earlier:
            found += [(PREVIOUS, (order, cell), earlier[-1]), (FIRST, (order, cell), earlier[0])]
    return found


def checkpoint_changes(cells: list[Cell], keys: list[str], lineage: pd.DataFrame, reference: str, seed: int,
                       p_adjust: str = "holm", primary_measure: str = PRIMARY_MEASURE) -> pd.DataFrame:
    """Every checkpoint against its previous one and its family's first (columns of ``model_comparisons``
    plus ``checkpoint_family``, ``against``, ``checkpoint_order_a``, ``checkpoint_order_b``)."""
    frames: list[pd.DataFrame] = []
    flips: dict[int, np.ndarray] = {}  # template sign flips by number of templates, shared by every pair
    if lineage.empty:
        return pd.DataFrame()
    for fam, run in sequences(cells, keys, lineage):
        for against, (order_a, a), (order_b, b) in pairs(run, reference):
            rows = compare_pair(a, b, keys, reference, seed, p_adjust, primary_measure, flips)
            if len(rows):
                frames.append(rows.assign(checkpoint_family=fam, against=against, checkpoint_order_a=order_a,
                                          checkpoint_order_b=order_b))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
