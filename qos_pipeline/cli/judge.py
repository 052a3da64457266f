"""`qos judge train` and `qos judge validate`: the learned judge and judge validation from the shell."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import pandas as pd

from qos_pipeline.cli.common import rebuild, settings, storage
from qos_pipeline.cli.judge_format import clean, format_report
from qos_pipeline.judging import learned
from qos_pipeline.judging.evaluation.evaluate import evaluate, stage
from qos_pipeline.judging.evaluation.labelled import load_labelled
from qos_pipeline.judging.evaluation.metrics import validate
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.metrics.labelled import labelled_outputs
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import WarehouseError, writer_lock

FEATURES_HELP = ("features of the learned judge: tfidf (default: word and character n-grams, linear SVM) or "
                 "lm[:MODEL] (mean-pooled hidden states of a local HF model, default the embedded SmolLM2, with "
                 "logistic regression; embeddings cached under <warehouse>/cache/embeddings)")


def _labelled_of_model(db: Path, model: str) -> pd.DataFrame:
    """A model's human-labelled outputs (``qos label import``), one row per output, for training."""
    with connect_readonly(db) as con:
        rows = labelled_outputs(con, model)
    if rows.empty:
        raise WarehouseError(f"model {model!r} has no human-labelled outputs in {db}: draw a sample with "
                             f"`qos label sample --model {model} --per-group 60 --out labels`, label it, then "
                             "`qos label import labels.csv --model {model}`")
    return rows.drop_duplicates("generation_id").reset_index(drop=True)


def cmd_train(args: argparse.Namespace) -> None:
    """``qos judge train``: fit the learned judge on a human-labelled file or on a model's imported labels."""
    paths = storage().paths()
    if (args.path is None) == (args.from_labels is None):
        raise SystemExit("give a labelled file (PATH) or --from-labels MODEL_KEY, not both or neither")
    if args.from_labels:
        df = _labelled_of_model(paths.db, check_key(args.from_labels, "--from-labels"))
        path = Path(f"human_labels-{args.from_labels}")
    else:
        path = Path(args.path).resolve()
        df = load_labelled(path, paths.assets, args.labels)
    name = check_key(args.name or re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._")[:40], "judge name")
    started = time.perf_counter()
    model = learned.fit(df, args.features, paths)
    folder = Path(args.out).resolve() if args.out else learned.judge_dir(paths.warehouse)
    saved = learned.save(df, model, name, folder, path.name)
    judge = learned.load(str(saved), paths.warehouse)
    spec = f"learned:{name}" if not args.out else f"learned:{saved}"
    print(f"trained {judge.judge_id} on {len(df)} rows of {path.name} in {time.perf_counter() - started:.0f} s")
    print(f"saved {saved} (+ {saved.with_suffix('.npz').name}: plain data, no pickle); use it as --judge {spec}")


def cmd_validate_model(args: argparse.Namespace) -> None:
    """The judge(s) of a model against the human labels imported for its own outputs."""
    paths = storage().paths()
    model = check_key(args.model, "--model")
    judge = None if args.judge is None else get_judge(args.judge, paths).judge_id
    with connect_readonly(paths.db) as con:
        rows = labelled_outputs(con, model, judge)
    if rows.empty:
        _labelled_of_model(paths.db, model)  # says how to label some when there are none at all
        raise WarehouseError(f"judge {judge} has not labelled the human-labelled outputs of {model}; judge them "
                             f"first (`qos run --model {model} --judge ...`)")
    reference = args.reference_group or settings().reference(paths)
    reports = []
    for judge_id, part in rows.groupby("judge_id", sort=True):
        report = validate(part.reset_index(drop=True), part["judge_label"].to_numpy(), reference, seed=args.seed)
        report.update(judge_id=judge_id, dataset="the sample imported by `qos label import`", outputs_model=model,
                      note="",
                      warnings=[], grouped_by="name_group", labels="taxonomy")
        reports.append(report)
    if args.json:
        print(json.dumps(clean(reports[0] if len(reports) == 1 else reports), indent=1))
        return
    print("\n\n".join(format_report(r) for r in reports))
    print(f"\n(stored by every warehouse build: judge_validation* rows whose outputs_model is {model})")


def cmd_validate(args: argparse.Namespace) -> None:
    """``qos judge validate``: compare a judge with human labels and print its report."""
    paths = storage().paths()
    if args.model is not None:
        if args.path is not None:
            raise SystemExit("give a labelled file (PATH) or --model MODEL_KEY (its imported labels), not both")
        return cmd_validate_model(args)
    if args.path is None:
        raise SystemExit("give a labelled file (PATH), or --model MODEL_KEY to use the labels imported for it")
    # Error gaps compare name groups; with --by another column there is no reference unless one is named.
    reference = args.reference_group or (None if args.by else settings().reference(paths))
    ev = evaluate(Path(args.path), args.judge or "default", paths, reference, cv_folds=args.cv, limit=args.limit,
                  seed=args.seed, run_id="validate-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()),
                  labels=args.labels, by=args.by, outputs_of=args.outputs_of, audited=audited_models(paths.db),
                  features=args.features, cv_by=args.cv_by)
    if not args.no_store:  # one writer at a time: a concurrent ingest, run or rebuild waits (saying so)
        with writer_lock(paths.staging, f"qos judge validate {Path(args.path).name}"):
            stage(ev.frames, paths.staging, ev.judge_id, ev.dataset)
            rebuild()
    for warning in ev.report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(clean(ev.report), indent=1))
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


def add_judge_parser(sub) -> None:
    """Add ``qos judge`` (train, validate) to the sub-command parser ``sub``."""
    judge = sub.add_parser("judge", help="train the learned judge; validate a judge against human labels")
    jsub = judge.add_subparsers(dest="judge_command", required=True)
    tr = jsub.add_parser("train", help="fit the learned judge on a human-labelled file (pilot CSV, CSV, JSONL)")
    tr.add_argument("path", nargs="?", help="a human-labelled file (pilot CSV, CSV or JSONL)")
    tr.add_argument("--from-labels", metavar="MODEL_KEY", help="train on the human labels imported for this "
                    "model's outputs (`qos label import`) instead of a file")
    tr.add_argument("--name", help="judge name (default: the file's name); use as --judge learned:NAME")
    tr.add_argument("--out", help="folder for NAME.json + NAME.npz (default: <warehouse>/judges)")
    tr.add_argument("--labels", metavar="VOCABULARY", help="label vocabulary of the file (as for validate)")
    tr.add_argument("--features", default="tfidf", metavar="FEATURES", help=FEATURES_HELP)
    tr.set_defaults(func=cmd_train)
    va = jsub.add_parser("validate", help="compare a judge with the human labels of a file, overall and per group")
    va.add_argument("path", nargs="?", help="a human-labelled file (or --model)")
    va.add_argument("--model", metavar="MODEL_KEY", help="validate on the human labels imported for this model's "
                    "outputs (`qos label import`) instead of a file: every judge of the model, or --judge")
    va.add_argument("--judge", default=None, help="default (the recommended offline judge) | rules | "
                    "llm:MODEL | learned:NAME | ensemble:METHOD:A+B | learned with --cv (default: default; with "
                    "--model: every judge of the model)")
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
