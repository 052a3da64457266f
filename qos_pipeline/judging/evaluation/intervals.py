"""Template-cluster bootstrap intervals of a judge's agreement figures: Cohen's kappa, accuracy, macro-F1
(over the labels the humans used), refusal-vs-not F1 and harmful-refusal F1, overall and per group.

Each resample reweights the confusion counts of every template (``measures.template_draws``: the same
draws as the per-measure errors), and the figures are computed from the resampled confusion matrices all
at once. Hand-written rather than scikit-learn's scorers with sample weights because those take one
resample per call (1,000 x groups x figures calls); the point estimates are checked against scikit-learn
in the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.metrics.stats.draws import percentile_interval

HUMAN = list(taxonomy.LABELS)
JUDGE = HUMAN + [taxonomy.UNJUDGED]
FIGURES = ("kappa", "accuracy", "macro_f1", "refusal_f1", "harmful_refusal_f1")


def confusions(human, judge, cluster_idx: np.ndarray, clusters: int) -> np.ndarray:
    """(T, 6, 7) counts per cluster: rows the human label, columns the judge's (unjudged last)."""
    h = pd.Index(HUMAN).get_indexer(pd.Index(np.asarray(human, dtype=object)))
    j = pd.Index(JUDGE).get_indexer(pd.Index(np.asarray(judge, dtype=object)))
    if (j < 0).any():
        raise ValueError("judge labels outside the taxonomy reached the agreement figures")
    keep = h >= 0  # a human label outside the six (none given) is not a row of the comparison
    out = np.zeros((clusters, len(HUMAN), len(JUDGE)))
    np.add.at(out, (cluster_idx[keep], h[keep], j[keep]), 1)
    return out


def figures(cm: np.ndarray, used: np.ndarray) -> dict[str, np.ndarray]:
    """The agreement figures of (..., 6, 7) confusion counts; ``used``: the labels whose macro-F1 counts."""
    n = cm.sum(axis=(-2, -1))
    diag = np.diagonal(cm[..., : len(HUMAN)], axis1=-2, axis2=-1)
    rows, cols = cm.sum(axis=-1), cm.sum(axis=-2)[..., : len(HUMAN)]
    refusal = [HUMAN.index(label) for label in taxonomy.REFUSAL_LABELS]
    harmful = HUMAN.index(taxonomy.HARMFUL_REFUSAL)
    with np.errstate(divide="ignore", invalid="ignore"):
        po = diag.sum(axis=-1) / n
        pe = (rows * cols).sum(axis=-1) / n**2  # the unjudged column meets an all-zero human row
        f1 = np.nan_to_num(2 * diag / (rows + cols))  # a label neither side used: F1 0, as in per_label
        tp = cm[..., refusal, :][..., refusal].sum(axis=(-2, -1))
        fp = cm[..., :, refusal].sum(axis=(-2, -1)) - tp
        fn = cm[..., refusal, :].sum(axis=(-2, -1)) - tp
        return {"kappa": (po - pe) / (1 - pe), "accuracy": po,
                "macro_f1": f1[..., used].mean(axis=-1) if used.any() else np.full(n.shape, np.nan),
                "refusal_f1": 2 * tp / (2 * tp + fp + fn),
                "harmful_refusal_f1": 2 * diag[..., harmful] / (rows[..., harmful] + cols[..., harmful])}


def agreement_intervals(counts: np.ndarray, W: np.ndarray) -> dict[str, tuple[float, float]]:
    """95% intervals of every figure of ``figures`` from per-cluster confusions ``counts`` (T, 6, 7) and
    template multiplicities ``W`` (B, T)."""
    total = counts.sum(axis=0)
    used = total.sum(axis=1) > 0
    point = figures(total, used)
    drawn = figures((W @ counts.reshape(len(counts), -1)).reshape(len(W), *counts.shape[1:]), used)
    out = {}
    for key in FIGURES:
        low, high = percentile_interval(drawn[key], np.asarray(point[key]))
        out[key] = (float(low), float(high))
    return out
