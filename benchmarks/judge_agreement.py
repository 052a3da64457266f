"""Agreement of the rules judge with the human labels of the public pilot (Llama-2-13b-chat).

Usage (from the repo root): python benchmarks/judge_agreement.py [PATH_TO_CSV]

Prints accuracy, macro-F1 over the six labels, Cohen's kappa and binary refusal-vs-not F1
(refusal or harmful refusal = positive), overall and per ``identity`` group, plus the confusion matrix.
Metrics are computed here with numpy/pandas so the figures do not depend on scikit-learn's version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qos_pipeline import taxonomy  # noqa: E402
from qos_pipeline.judges.base import JudgeInput  # noqa: E402
from qos_pipeline.judges.rules import RulesJudge  # noqa: E402

DEFAULT_CSV = REPO / "../shared/data/pilot/df_annotated_llama13.csv"


def load_pilot(path: Path) -> pd.DataFrame:
    """One row per (prompt, generation k): prompt, response without the echoed prompt, human label."""
    df = pd.read_csv(path)
    k = df["variable"].str.extract(r"(\d+)\s*$", expand=False)
    raw = [df.at[i, f"g{kk}"] for i, kk in zip(df.index, k)]
    out = pd.DataFrame(
        {
            "identity": df["identity"],
            "prompt": df["prompt_sentence"],
            "response": [strip_prompt(p, r) for p, r in zip(df["prompt_sentence"], raw)],
            "human": df["label"].map(taxonomy.normalize_label),
        }
    )
    return out


def strip_prompt(prompt: str, response: object) -> object:
    """Remove the echoed prompt sentence at the start of a generation (non-text passes through)."""
    if not isinstance(response, str):
        return response
    text = response.strip()
    if isinstance(prompt, str) and text.startswith(prompt.strip()):
        text = text[len(prompt.strip()) :]
    return text.strip()


def confusion(y_true: pd.Series, y_pred: pd.Series, labels: list[str]) -> pd.DataFrame:
    cm = pd.crosstab(pd.Categorical(y_true, labels), pd.Categorical(y_pred, labels), dropna=False)
    cm.index.name, cm.columns.name = "human", "judge"
    return cm.reindex(index=labels, columns=labels, fill_value=0)


def f1_scores(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(axis=0), cm.sum(axis=1)
    denom = pred + true
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def cohen_kappa(cm: np.ndarray) -> float:
    n = cm.sum()
    if n == 0:
        return float("nan")
    po = np.trace(cm) / n
    pe = (cm.sum(axis=0) * cm.sum(axis=1)).sum() / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")


def metrics(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float]:
    """Accuracy, macro-F1 over the six labels, kappa, binary refusal F1.

    Macro-F1 averages the labels present in the human or judge labels of this slice (a label absent
    from both has no defined F1 and would otherwise count as 0).
    """
    labels = list(taxonomy.LABELS)
    cm = confusion(y_true, y_pred, labels).to_numpy()
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    f1 = f1_scores(cm)
    ref_true = y_true.isin(taxonomy.REFUSAL_LABELS).to_numpy()
    ref_pred = y_pred.isin(taxonomy.REFUSAL_LABELS).to_numpy()
    tp = float((ref_true & ref_pred).sum())
    denom = float(ref_true.sum() + ref_pred.sum())
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true.to_numpy() == y_pred.to_numpy()).mean()),
        "macro_f1": float(f1[present].mean()),
        "kappa": cohen_kappa(cm),
        "refusal_f1": 2 * tp / denom if denom else float("nan"),
    }


def per_label_f1(y_true: pd.Series, y_pred: pd.Series) -> pd.Series:
    labels = list(taxonomy.LABELS)
    return pd.Series(f1_scores(confusion(y_true, y_pred, labels).to_numpy()), index=labels)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"pilot file not found: {args.csv.resolve()}", file=sys.stderr)
        return 2
    data = load_pilot(args.csv)
    judge = RulesJudge()
    items = [JudgeInput(p, r) for p, r in zip(data["prompt"], data["response"])]
    data["judge"] = [j.label for j in judge.judge(items)]

    rows = {"overall": metrics(data["human"], data["judge"])}
    for group, part in data.groupby("identity", sort=True):
        rows[str(group)] = metrics(part["human"], part["judge"])
    table = pd.DataFrame(rows).T
    table["n"] = table["n"].astype(int)
    pd.set_option("display.width", 160)
    print(f"judge {judge.judge_id} vs human labels, {args.csv.name} ({len(data)} rows)\n")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print("(macro_f1 averages the six labels over those present in the slice's human or judge labels;")
    print(" refusal_f1 counts refusal and harmful refusal as the positive class)")
    print("\nper-label F1 (overall):")
    print(per_label_f1(data["human"], data["judge"]).to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nconfusion matrix (rows: human, columns: judge):")
    print(confusion(data["human"], data["judge"], list(taxonomy.LABELS)).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
