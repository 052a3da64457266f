"""How `qos judge validate` prints a validation: agreement figures with their intervals, overall and per
group; the judge's error per measure and group against the reference group, with the flags; per-label
figures and the confusion matrix."""

from __future__ import annotations

import json
import math

import pandas as pd

_SUMMARY = ["n", "n_unjudged", "accuracy", "macro_f1", "kappa", "refusal_f1", "human_refusal_rate",
            "judge_refusal_rate", "flagged"]
_WITH_CI = ("accuracy", "macro_f1", "kappa", "refusal_f1")


def clean(value):
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(v, digits: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _with_ci(m: dict, key: str) -> str:
    low, high = (m.get("intervals") or {}).get(key, (float("nan"), float("nan")))
    if m.get(key) is None or math.isnan(m[key]):
        return ""
    return f"{m[key]:.3f} [{_num(low, 2)}, {_num(high, 2)}]" if not math.isnan(low) else f"{m[key]:.3f}"


def _summary(report: dict) -> str:
    rows = {"overall": report, **report["per_group"]}
    table = {}
    for scope, m in rows.items():
        row = {c: m.get(c) for c in _SUMMARY}
        row.update({c: _with_ci(m, c) for c in _WITH_CI})
        row.update(n=f"{m['n']:.0f}", n_unjudged=f"{m['n_unjudged']:.0f}", flagged="FLAG" if m.get("flagged") else "",
                   human_refusal_rate=_num(m["human_refusal_rate"]), judge_refusal_rate=_num(m["judge_refusal_rate"]))
        table[scope] = row
    return pd.DataFrame(table).T.to_string(na_rep="")


def _pts(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.1f}"


def _ci(r: dict, key: str) -> str:
    """``r[key]`` with its interval, two decimals."""
    return f"{_num(r[key], 2)} [{_num(r[key + '_ci_low'], 2)}, {_num(r[key + '_ci_high'], 2)}]"


def _measures(report: dict) -> str:
    rows = []
    for r in report.get("measures", []):
        rows.append({"measure": r["measure"], "group": r["name_group"], "n": r["n"],
                     "human +": r["true_positives"] + r["false_negatives"], "sensitivity": _ci(r, "sensitivity"),
                     "specificity": _ci(r, "specificity"), "judge gap": _pts(r["judge_gap"]),
                     "human gap": _pts(r["human_gap"]),
                     "gap error [CI]": "" if math.isnan(r["gap_error"]) else
                     f"{_pts(r['gap_error'])} [{100 * r['gap_error_ci_low']:.1f}, {100 * r['gap_error_ci_high']:.1f}]",
                     "flag": "FLAG" if r["flagged"] else ""})
    return pd.DataFrame(rows).to_string(index=False) if rows else "(none)"


def format_report(report: dict) -> str:
    """The figures as readable tables: summary overall and per group, per measure, per label, confusion, flags."""
    labels = pd.DataFrame(report["per_label"]).T.astype({"support": int})
    confusion = pd.DataFrame(report["confusion"]).T.rename_axis("human \\ judge")
    source = f", outputs of {report['outputs_model']}" if report.get("outputs_model") else ""
    reference = report.get("reference_group")
    parts = [f"judge {report['judge_id']} vs human labels: {report['dataset']} ({report['n']} rows{source}; "
             f"labels: {report.get('labels', 'taxonomy')}; groups: {report.get('grouped_by', 'name_group')}; "
             f"95% intervals resample {report.get('clusters', '?')} templates {report.get('resamples', '?')} times)",
             _summary(report),
             "(macro_f1: mean F1 of the labels the humans used in the slice; refusal_f1: refusal or harmful refusal "
             "vs the rest)",
             "judge error per measure and group" + (f" (gaps vs '{reference}'; gap error = judge gap - human gap: "
                                                     "what the judge's error adds to the measured gap)" if reference
                                                     else " (no reference group: --reference-group GROUP)")
             + ":\n" + _measures(report),
             "per label (overall):\n" + labels.to_string(float_format=lambda v: f"{v:.3f}"),
             "confusion matrix (overall):\n" + confusion.to_string()]
    if report.get("agreement"):
        parts.append("agreement between members: " + json.dumps(clean(report["agreement"])))
    parts.append("flags:\n  " + ("\n  ".join(f["text"] for f in report["flags"]) if report["flags"] else
                                 "none: on no measure does a group's judge error differ from the reference group's "
                                 "enough to change a gap"))
    if report.get("note"):
        parts.append(f"note: {report['note']}")
    parts += [f"warning: {w}" for w in report.get("warnings", [])]
    return "\n\n".join(parts)
