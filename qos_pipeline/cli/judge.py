"""`qos judge train` and `qos judge validate`: the learned judge and judge validation from the shell."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import pandas as pd

from qos_pipeline.cli.common import execute, instance, settings, storage
from qos_pipeline.definitions import build_definitions
from qos_pipeline.judging import learned
from qos_pipeline.judging.evaluation.evaluate import evaluate, stage
from qos_pipeline.judging.evaluation.labelled import load_labelled
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import writer_lock

FEATURES_HELP = ("features of the learned judge: tfidf (default: word and character n-grams, linear SVM) or "
                 "lm[:MODEL] (mean-pooled hidden states of a local HF model, default the embedded SmolLM2, with "
                 "logistic regression; embeddings cached under <warehouse>/cache/embeddings)")
_SUMMARY = ["n", "n_unjudged", "accuracy", "macro_f1", "kappa", "refusal_f1", "human_refusal_rate",
            "judge_refusal_rate", "bias_diff_vs_ref", "flagged"]


def cmd_train(args: argparse.Namespace) -> None:
    paths = storage().paths()
    path = Path(args.path).resolve()
    name = check_key(args.name or re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._")[:40], "judge name")
    df = load_labelled(path, paths.assets, args.labels)
    started = time.perf_counter()
    model = learned.fit(df, args.features, paths)
    folder = Path(args.out).resolve() if args.out else learned.judge_dir(paths.warehouse)
    saved = learned.save(df, model, name, folder, path.name)
    judge = learned.load(str(saved), paths.warehouse)
    spec = f"learned:{name}" if not args.out else f"learned:{saved}"
    print(f"trained {judge.judge_id} on {len(df)} rows of {path.name} in {time.perf_counter() - started:.0f} s")
    print(f"saved {saved} (+ {saved.with_suffix('.npz').name}: plain data, no pickle); use it as --judge {spec}")


def _clean(value):
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_report(report: dict) -> str:
    """The figures as readable tables: summary overall and per group, per-label, confusion, flags."""
    rows = {"overall": report, **report["per_group"]}
    summary = pd.DataFrame({k: {c: m.get(c) for c in _SUMMARY} for k, m in rows.items()}).T
    fmt = {c: "{:.3f}".format for c in ("accuracy", "macro_f1", "kappa", "refusal_f1", "human_refusal_rate",
                                        "judge_refusal_rate", "bias_diff_vs_ref")}
    fmt.update(n="{:.0f}".format, n_unjudged="{:.0f}".format, flagged=lambda v: "FLAG" if v is True else "")
    labels = pd.DataFrame(report["per_label"]).T.astype({"support": int})
    confusion = pd.DataFrame(report["confusion"]).T.rename_axis("human \\ judge")
    source = f", outputs of {report['outputs_model']}" if report.get("outputs_model") else ""
    parts = [f"judge {report['judge_id']} vs human labels of {report['dataset']} ({report['n']} rows{source}; "
             f"labels: {report.get('labels', 'taxonomy')}; groups: {report.get('grouped_by', 'name_group')})",
             summary.to_string(na_rep="", formatters=fmt),
             "(macro_f1: mean F1 of the labels present in the slice; refusal_f1: refusal or harmful refusal vs "
             "the rest; bias_diff_vs_ref: judge refusal-rate error minus that of "
             + (f"'{report['reference_group']}')" if report.get("reference_group") else "a reference group: "
                "none given, --reference-group GROUP)"),
             "per label (overall):\n" + labels.to_string(float_format=lambda v: f"{v:.3f}"),
             "confusion matrix (overall):\n" + confusion.to_string()]
    if report.get("agreement"):
        parts.append("agreement between members: " + json.dumps(_clean(report["agreement"])))
    parts.append("flags:\n  " + ("\n  ".join(report["flags"]) if report["flags"] else "none: no group's judge "
                                 "error differs enough from the reference group's to explain a disparity"))
    if report.get("note"):
        parts.append(f"note: {report['note']}")
    parts += [f"warning: {w}" for w in report.get("warnings", [])]
    return "\n\n".join(parts)


def cmd_validate(args: argparse.Namespace) -> None:
    paths = storage().paths()
    # Error gaps compare name groups; with --by another column there is no reference unless one is named.
    reference = args.reference_group or (None if args.by else settings().reference(paths))
    ev = evaluate(Path(args.path), args.judge, paths, reference, cv_folds=args.cv, limit=args.limit,
                  seed=args.seed, run_id="validate-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()),
                  labels=args.labels, by=args.by, outputs_of=args.outputs_of, audited=audited_models(paths.db),
                  features=args.features, cv_by=args.cv_by)
    if not args.no_store:  # one writer at a time: a concurrent ingest, run or rebuild waits (saying so)
        with writer_lock(paths.staging, f"qos judge validate {Path(args.path).name}"):
            stage(ev.frames, paths.staging, ev.judge_id, ev.dataset)
            _rebuild()
    for warning in ev.report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(_clean(ev.report), indent=1))
    else:
        print(format_report(ev.report))
        print(f"\nstored as validation {ev.judge_id}@{ev.dataset} in {paths.db} (tables judge_validations*, "
              "refusal_rates_corrected)" if not args.no_store else "\n(not stored: --no-store)")


def audited_models(db: Path) -> dict[str, list[str]]:
    """Judge id -> model keys the warehouse holds that judge's labels of (empty without a warehouse)."""
    if not Path(db).is_file():
        return {}
    import duckdb

    try:
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute("SELECT DISTINCT judge_id, model_key FROM judgments").fetchall()
    except duckdb.Error:  # locked by a writer, or built by an older version: no warning rather than a crash
        return {}
    out: dict[str, list[str]] = {}
    for judge_id, model in rows:
        out.setdefault(judge_id, []).append(model)
    return out


def _rebuild() -> None:
    """Rebuild the warehouse through Dagster (like `qos ingest`), so the run shows in the UI; its log goes
    to stderr, leaving stdout to the figures (one JSON object with --json)."""
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        with instance() as inst:
            execute(build_definitions(storage=storage(), audit=settings()), "metrics_job", inst)
    finally:
        sys.stdout = stdout


def add_judge_parser(sub) -> None:
    judge = sub.add_parser("judge", help="train the learned judge; validate a judge against human labels")
    jsub = judge.add_subparsers(dest="judge_command", required=True)
    tr = jsub.add_parser("train", help="fit the learned judge on a human-labelled file (pilot CSV, CSV, JSONL)")
    tr.add_argument("path")
    tr.add_argument("--name", help="judge name (default: the file's name); use as --judge learned:NAME")
    tr.add_argument("--out", help="folder for NAME.json + NAME.npz (default: <warehouse>/judges)")
    tr.add_argument("--labels", metavar="VOCABULARY", help="label vocabulary of the file (as for validate)")
    tr.add_argument("--features", default="tfidf", metavar="FEATURES", help=FEATURES_HELP)
    tr.set_defaults(func=cmd_train)
    va = jsub.add_parser("validate", help="compare a judge with the human labels of a file, overall and per group")
    va.add_argument("path")
    va.add_argument("--judge", default="default", help="default (the recommended offline judge) | rules | "
                    "llm:MODEL | learned:NAME | ensemble:METHOD:A+B | learned with --cv (default: default)")
    va.add_argument("--labels", metavar="VOCABULARY", help="the file's label vocabulary: taxonomy (default: the six "
                    "labels), xstest (XSTest's final_label/completion columns; full and partial refusal count as "
                    "refusal) or a YAML/JSON mapping file: labels: {RAW: TAXONOMY_LABEL}")
    va.add_argument("--by", metavar="COLUMN", help="column of the file for the per-group figures (e.g. type); "
                    "default: the name group")
    va.add_argument("--outputs-of", metavar="MODEL_KEY", help="model key whose outputs the file holds; stored "
                    "with the validation (outputs_model), and a warning names audited models it differs from")
    va.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    va.add_argument("--cv", type=int, metavar="K",
                    help="with --judge learned: K-fold cross-validation, folds split by template (or --cv-by)")
    va.add_argument("--cv-by", metavar="COLUMN", help="with --cv: split the folds by this column's values "
                    "(e.g. type) instead of the template")
    va.add_argument("--features", default="tfidf", metavar="FEATURES", help="with --cv: " + FEATURES_HELP)
    va.add_argument("--limit", type=int, help="judge a seeded random subset of this many rows")
    va.add_argument("--seed", type=int, default=0, help="seed of the --limit subset")
    va.add_argument("--reference-group", help="group that error gaps are measured against (default: groups.yaml)")
    va.add_argument("--no-store", action="store_true", help="print only; do not stage and rebuild the warehouse")
    va.set_defaults(func=cmd_validate)
