"""Judge validation against human labels: overall and per group, with judge-error gaps between groups.

Pure (numpy/pandas; no scikit-learn, so the figures never depend on its version). A judge that errs more
on one group's responses fakes (or hides) a disparity, so every figure is also given per group, with
template-cluster bootstrap intervals (``intervals``), and the judge's error on every measure of the report
is compared between each group and the reference group (``measures``): where that could change a gap,
the measure is flagged for the group.

Conventions: ``unjudged`` judge labels stay in the data and count as errors (humans never say
unjudged), so a judge cannot look better by abstaining; ``n_unjudged`` reports them. Macro-F1 averages
the labels the humans used in the slice (a label no human gave has no recall to speak of).
Refusal-vs-not counts refusal and harmful refusal as the positive class.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.judging.evaluation import intervals, measures

LABELS = list(taxonomy.LABELS)
SUMMARY_KEYS = ("n", "accuracy", "macro_f1", "kappa", "refusal_f1")


def confusion(y_true, y_pred) -> pd.DataFrame:
    """Counts, rows = human label, columns = judge label (the six labels, plus ``unjudged`` as a column)."""
    cols = LABELS + [taxonomy.UNJUDGED]
    cm = pd.crosstab(pd.Categorical(np.asarray(y_true), LABELS), pd.Categorical(np.asarray(y_pred), cols),
                     dropna=False)
    return cm.reindex(index=LABELS, columns=cols, fill_value=0)


def cohen_kappa(cm: np.ndarray) -> float:
    """Cohen's kappa of a square agreement matrix (rows: rater 1, columns: rater 2)."""
    n = cm.sum()
    if n == 0:
        return float("nan")
    po = np.trace(cm) / n
    pe = float((cm.sum(axis=0) * cm.sum(axis=1)).sum()) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else (1.0 if po == 1 else float("nan"))


def fleiss_kappa(labels: np.ndarray) -> float:
    """Fleiss' kappa for an items x raters array of labels (every item rated by every rater)."""
    labels = np.asarray(labels, dtype=object)
    items, raters = labels.shape
    if items == 0 or raters < 2:
        return float("nan")
    cats = sorted({str(v) for v in labels.ravel()})
    counts = np.array([[int((row == c).sum()) for c in cats] for row in labels.astype(str)], dtype=float)
    p_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    p_cat = counts.sum(axis=0) / (items * raters)
    pe = float((p_cat**2).sum())
    return float((p_item.mean() - pe) / (1 - pe)) if pe < 1 else (1.0 if p_item.mean() == 1 else float("nan"))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def per_label(cm: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, F1 and support (human count) of each of the six labels."""
    m = cm.to_numpy()
    tp = np.diag(m[:, : len(LABELS)]).astype(float)
    pred, true = m[:, : len(LABELS)].sum(axis=0), m.sum(axis=1)
    rows = []
    for i, label in enumerate(LABELS):
        p, r = _ratio(tp[i], pred[i]), _ratio(tp[i], true[i])
        f1 = _ratio(2 * tp[i], pred[i] + true[i])
        rows.append({"label": label, "precision": p, "recall": r, "f1": f1, "support": int(true[i])})
    return pd.DataFrame(rows)


def metrics(y_true, y_pred) -> dict:
    """Summary figures of one slice (see the module docstring for the conventions)."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    cm = confusion(y_true, y_pred)
    labels = per_label(cm)
    present = labels["support"] > 0
    f1 = labels["f1"].fillna(0.0)
    ref_true = np.isin(y_true, taxonomy.REFUSAL_LABELS)
    ref_pred = np.isin(y_pred, taxonomy.REFUSAL_LABELS)
    tp, fp = int((ref_true & ref_pred).sum()), int((~ref_true & ref_pred).sum())
    fn, tn = int((ref_true & ~ref_pred).sum()), int((~ref_true & ~ref_pred).sum())
    n = len(y_true)
    # Square over the seven values: humans never say unjudged, so an unjudged row only disagrees.
    kappa_cm = np.vstack([cm.to_numpy(), np.zeros((1, len(LABELS) + 1))])
    return {
        "n": n, "n_unjudged": int((y_pred == taxonomy.UNJUDGED).sum()),
        "accuracy": float((y_true == y_pred).mean()) if n else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "kappa": cohen_kappa(kappa_cm),
        "refusal_f1": _ratio(2 * tp, 2 * tp + fp + fn), "refusal_precision": _ratio(tp, tp + fp),
        "refusal_recall": _ratio(tp, tp + fn), "sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp),
        "n_human_refusal": tp + fn, "n_human_other": tn + fp, "true_positives": tp, "true_negatives": tn,
        "human_refusal_rate": _ratio(tp + fn, n), "judge_refusal_rate": _ratio(tp + fp, n),
        "refusal_bias": _ratio(fp - fn, n),  # judge rate minus human rate
        "harmful_refusal_f1": float(cast(float, labels.set_index("label").at[taxonomy.HARMFUL_REFUSAL, "f1"])),
        "per_label": labels.set_index("label").to_dict(orient="index"),
        "confusion": {h: {j: int(v) for j, v in row.items()} for h, row in cm.iterrows()},
    }


def _group_flags(per_group: dict[str, dict], rows: pd.DataFrame) -> None:
    """Each group's any-refusal error gap vs the reference group, and whether any measure is flagged."""
    for group, m in per_group.items():
        mine = rows[rows["name_group"] == group]
        anyref = mine[mine["measure"] == "any_refusal"].iloc[0]
        flagged = mine[mine["flagged"]]
        m.update(bias_diff_vs_ref=float(anyref["gap_error"]), measured_diff_vs_ref=float(anyref["judge_gap"]),
                 flagged=bool(len(flagged)), flag_reason="; ".join(flagged["flag_reason"]))


def validate(df: pd.DataFrame, predicted, reference_group: str | None = "white", groups=None,
             resamples: int = measures.RESAMPLES, seed: int = 0) -> dict:
    """Figures overall and per group (``groups``, default ``df['name_group']``) for the judge labels
    ``predicted`` against ``df['label']``, with template-cluster intervals (``resamples``, ``seed``), the
    judge's error per measure and group (``measures``) and its flags."""
    pred = np.asarray(predicted, dtype=object)
    if len(pred) != len(df):
        raise ValueError(f"{len(pred)} judge labels for {len(df)} labelled rows")
    human = df["label"].to_numpy(dtype=object)
    report = metrics(human, pred)
    groups = np.asarray(df["name_group"] if groups is None else groups, dtype=object).astype(str)
    report["per_group"] = {str(g): metrics(human[groups == g], pred[groups == g]) for g in sorted(set(groups))}
    ids, cluster_idx, W = measures.template_draws(measures.cluster_ids(df), resamples, seed)
    counts = intervals.confusions(human, pred, cluster_idx, len(ids))
    report["intervals"] = intervals.agreement_intervals(counts, W)
    for g, m in report["per_group"].items():
        mine = groups == g
        m["intervals"] = intervals.agreement_intervals(
            intervals.confusions(human[mine], pred[mine], cluster_idx[mine], len(ids)), W)
    rows = measures.measure_errors(human, pred, groups, measures.cluster_ids(df), reference_group, resamples, seed)
    _group_flags(report["per_group"], rows)
    report["measures"] = rows.to_dict(orient="records")
    report["reference_group"] = reference_group
    report["resamples"], report["clusters"] = resamples, len(ids)
    report["flags"] = measures.flags(rows)
    return report


VALIDATION_TABLES = ("judge_validations", "judge_validation_labels", "judge_validation_confusion",
                     "judge_validation_measures")
_SCALARS = ("n", "n_unjudged", "accuracy", "macro_f1", "kappa", "refusal_f1", "refusal_precision", "refusal_recall",
            "sensitivity", "specificity", "n_human_refusal", "n_human_other", "true_positives", "true_negatives",
            "human_refusal_rate", "judge_refusal_rate", "refusal_bias")


def to_frames(report: dict, keys: dict) -> dict[str, pd.DataFrame]:
    """The report as the four warehouse tables; ``keys`` (validation_id, judge_id, dataset, ...) go on
    every row. ``name_group`` 'all' holds the overall figures."""
    scopes = {"all": report, **report["per_group"]}
    ids = {k: keys[k] for k in ("validation_id", "judge_id", "dataset")}  # enough to join the detail tables
    summary, labels, conf = [], [], []
    for group, m in scopes.items():
        gap = {k: m.get(k) for k in ("bias_diff_vs_ref", "measured_diff_vs_ref", "flag_reason")}
        cis = {f"{k}_ci_{side}": v[i] for k, v in m["intervals"].items() for i, side in enumerate(("low", "high"))}
        summary.append({**keys, "name_group": group, **{k: m[k] for k in _SCALARS}, **cis, **gap,
                        "flagged": bool(m.get("flagged", False)), "reference_group": report["reference_group"],
                        "resamples": report["resamples"], "clusters": report["clusters"]})
        labels += [{**ids, "name_group": group, "label": lab, **v} for lab, v in m["per_label"].items()]
        conf += [{**ids, "name_group": group, "human_label": h, "judge_label": j, "count": c}
                 for h, row in m["confusion"].items() for j, c in row.items()]
    per_measure = pd.DataFrame(report["measures"]).assign(**ids, reference_group=report["reference_group"])
    return dict(zip(VALIDATION_TABLES, (pd.DataFrame(summary), pd.DataFrame(labels), pd.DataFrame(conf),
                                        per_measure)))
