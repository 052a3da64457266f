"""Agreement of a judge with the human labels of the public pilot (Llama-2-13b-chat), or of any labelled
file, overall and per group.

Usage (from the repo root):
  python benchmarks/judge_agreement.py [CSV] [--judge default]               # the recommended judge (rules)
  python benchmarks/judge_agreement.py [CSV] --judge learned --cv 6          # learned, folds split by template
  python benchmarks/judge_agreement.py [CSV] --judge learned --cv 6 --features lm   # on SmolLM2's hidden states
  python benchmarks/judge_agreement.py XSTEST.csv --labels xstest --judge learned --cv 6 --cv-by type
  python benchmarks/judge_agreement.py [CSV] --judge llm:smollm2-135m-instruct --limit 200   # a seeded subset
  python benchmarks/judge_agreement.py ../shared/data/xstest/xstest_v2_completions_gpt4.csv --labels xstest \
      --by type                                                              # another family's refusals

Prints accuracy, macro-F1 over the six labels, Cohen's kappa and binary refusal-vs-not F1 (refusal or
harmful refusal = positive), overall and per ``identity`` group, per-label figures, the confusion matrix
and any group whose judge error could explain a disparity; plus the judging throughput. Metrics come
from ``qos_pipeline.validation`` (numpy/pandas only), the same code as ``qos judge validate``; nothing
is written to the warehouse.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qos_pipeline import taxonomy  # noqa: E402
from qos_pipeline.judging.evaluation import metrics as validation  # noqa: E402
from qos_pipeline.cli.judge_format import format_report  # noqa: E402
from qos_pipeline.settings import Paths

DEFAULT_CSV = REPO / "../shared/data/pilot/df_annotated_llama13.csv"


def load_pilot(path: Path) -> pd.DataFrame:
    """One row per (prompt, generation k): prompt, response without the echoed prompt, human label."""
    df = pd.read_csv(path)
    k = df["variable"].str.extract(r"(\d+)\s*$", expand=False)
    raw = [df.at[i, f"g{kk}"] for i, kk in zip(df.index, k)]
    return pd.DataFrame({
        "identity": df["identity"],
        "prompt": df["prompt_sentence"],
        "response": [strip_prompt(p, r) for p, r in zip(df["prompt_sentence"], raw)],
        "human": df["label"].map(taxonomy.normalize_label),
    })


def strip_prompt(prompt: str, response: object) -> object:
    """Remove the echoed prompt sentence at the start of a generation (non-text passes through)."""
    if not isinstance(response, str):
        return response
    text = response.strip()
    if isinstance(prompt, str) and text.startswith(prompt.strip()):
        text = text[len(prompt.strip()):]
    return text.strip()


def metrics(y_true: pd.Series, y_pred: pd.Series) -> dict[str, float]:
    """n, accuracy, macro-F1, kappa, binary refusal F1 (see ``qos_pipeline.validation``)."""
    full = validation.metrics(y_true, y_pred)
    return {k: full[k] for k in validation.SUMMARY_KEYS}


def main(argv: list[str] | None = None) -> int:
    from qos_pipeline.judging.evaluation.evaluate import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--judge", default="default",
                    help="default | rules | learned (with --cv) | llm:MODEL | learned:NAME | ensemble:...")
    ap.add_argument("--labels", help="label vocabulary of the file: taxonomy (default), xstest, or a mapping file")
    ap.add_argument("--by", help="column of the per-group figures (default: the name group)")
    ap.add_argument("--cv", type=int, help="with --judge learned: folds split by template (or --cv-by)")
    ap.add_argument("--cv-by", help="with --cv: split the folds by this column (e.g. type) instead of the template")
    ap.add_argument("--features", default="tfidf", help="with --cv: tfidf (default) or lm[:MODEL]")
    ap.add_argument("--limit", type=int, help="a seeded random subset of this many rows")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.csv.exists():
        print(f"labelled file not found: {args.csv.resolve()}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    ev = evaluate(args.csv, args.judge, Paths.resolve(), None if args.by else "white", cv_folds=args.cv,
                  limit=args.limit, seed=args.seed, run_id="benchmark", labels=args.labels, by=args.by,
                  features=args.features, cv_by=args.cv_by)
    seconds = time.perf_counter() - started
    pd.set_option("display.width", 200)
    print(format_report(ev.report))
    print(f"\n{ev.report['n']} rows judged in {seconds:.1f} s ({ev.report['n'] / seconds:.1f} rows/s, "
          "including loading the data and the judge" + (", and training per fold)" if args.cv else ")"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
