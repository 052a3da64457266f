"""`qos label sample` and `qos label import`: a human-labelled sample of a model's own outputs, the input
that checks the judge on that model and corrects every rate and gap for its errors (prediction-powered
estimates, tables ``label_rates_ppi`` and ``group_comparisons_ppi``)."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.cli.common import rebuild, storage
from qos_pipeline.judging.annotation import sample as sampling
from qos_pipeline.judging.annotation import store
from qos_pipeline.judging.annotation.reading import LabelFileError, read_labels
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import WarehouseError, writer_lock

JUDGED_OUTPUTS = """
    SELECT g.generation_id, g.prompt_text, g.response, g.name_group, g.name, g.template_id, g.template_text
    FROM generations g
    WHERE g.model_key = ? AND EXISTS (SELECT 1 FROM judgments j WHERE j.generation_id = g.generation_id)
    ORDER BY g.generation_id"""


def _judged_outputs(db: Path, model: str) -> tuple[pd.DataFrame, set[str]]:
    """The model's judged outputs and the ids a human has labelled already (an error names the models
    there are when this one has none)."""
    with connect_readonly(db) as con:
        outputs = con.execute(JUDGED_OUTPUTS, [model]).df()
        if outputs.empty:
            models = [m for (m,) in con.execute("SELECT DISTINCT model_key FROM generations ORDER BY 1").fetchall()]
            raise WarehouseError(f"model {model!r} has no judged outputs in {db}; give one of "
                                 f"{', '.join(models) or 'none yet: run `qos run` or `qos ingest` first'}")
        labelled = {g for (g,) in con.execute("SELECT DISTINCT generation_id FROM human_labels WHERE model_key = ?",
                                               [model]).fetchall()}
    return outputs, labelled


def cmd_sample(args: argparse.Namespace) -> None:
    """``qos label sample``: draw a seeded sample of a model's judged outputs for annotators."""
    paths = storage().paths()
    model = check_key(args.model, "--model")
    outputs, labelled = _judged_outputs(paths.db, model)
    drawn = sampling.draw(outputs, args.per_group, args.seed, labelled)
    if drawn.empty:
        raise SystemExit(f"every judged output of {model} is labelled already ({len(labelled)}); nothing to draw")
    files = sampling.write_files(sampling.for_annotators(drawn), Path(args.out).resolve())
    counts = ", ".join(f"{g} {n}" for g, n in drawn.groupby("name_group").size().items())
    print(f"drew {len(drawn)} outputs of {model} (seed {args.seed}; {counts}; "
          f"{drawn['template_id'].nunique()} templates; {len(labelled)} labelled earlier, not drawn again)")
    for f in files:
        print(f"wrote {f}")
    print(f"next: fill the label column ({', '.join(taxonomy.LABELS)}) and annotator, or label {files[1].name} in "
          f"Label Studio with {files[2].name}, then `qos label import FILE --model {model}`")


def cmd_import(args: argparse.Namespace) -> None:
    """``qos label import``: store a labelled file's human labels for a model."""
    paths = storage().paths()
    model = check_key(args.model, "--model")
    path = Path(args.path).resolve()
    read = read_labels(path, args.annotator or "")
    if read.labels.empty:
        raise LabelFileError(f"{path} holds no label yet ({read.skipped} rows without one); fill the label "
                             f"column with one of {', '.join(taxonomy.LABELS)}")
    with writer_lock(paths.staging, f"qos label import {path.name} --model {model}"):
        outputs, _ = _judged_outputs(paths.db, model)
        store.check_known(read.labels, set(outputs["generation_id"]), model, path)
        before = store.stored_labels(paths.staging, model)
        after = store.merged(before, read.labels, model, path.name, f"import-{uuid.uuid4().hex[:12]}")
        store.store(paths.staging, model, after)
        rebuild()
    old = set(zip(before["generation_id"], before["annotator"]))
    replaced = sum((g, a) in old for g, a in zip(read.labels["generation_id"], read.labels["annotator"]))
    print(f"imported {len(read.labels)} labels of {model} from {path.name} ({len(read.labels) - replaced} new, "
          f"{replaced} relabelled; {read.skipped} rows without a label skipped); {model} now has "
          f"{after['generation_id'].nunique()} human-labelled outputs by {after['annotator'].nunique()} annotator(s)")
    _print_summary(paths.db, model)


def _print_summary(db: Path, model: str) -> None:
    """What the labels say: annotator agreement, the judge checked on them, the corrected primary gaps."""
    with connect_readonly(db) as con:
        agree = con.execute("SELECT * FROM annotator_agreement WHERE model_key = ?", [model]).df()
        checks = con.execute("""SELECT judge_id, n, kappa, kappa_ci_low, kappa_ci_high, flag_reason
            FROM judge_validations WHERE outputs_model = ? AND name_group = 'all' AND dataset LIKE 'labels-%'
            ORDER BY judge_id""", [model]).df()
        gaps = con.execute("""SELECT judge_id, name_group, vs_group, judge_diff, diff, diff_ci_tn_low, diff_ci_tn_high
            FROM group_comparisons_ppi WHERE model_key = ? AND family = 'primary' ORDER BY judge_id, diff DESC""",
                           [model]).df()
        flags = con.execute("""SELECT m.judge_id, m.flag_reason FROM judge_validation_measures m
            JOIN judge_validations v USING (validation_id, name_group)
            WHERE v.outputs_model = ? AND m.dataset LIKE 'labels-%' AND m.flagged ORDER BY ALL""", [model]).df()
    for _, a in agree.iterrows():
        print(f"annotators {a['annotator_a']} and {a['annotator_b']}: {a['n']} outputs in common, agreement "
              f"{a['agreement']:.2f}, kappa {a['kappa']:.2f}")
    for _, c in checks.iterrows():
        print(f"judge {c['judge_id']} on {c['n']} labelled outputs: six-way kappa {c['kappa']:.2f} "
              f"[{c['kappa_ci_low']:.2f}, {c['kappa_ci_high']:.2f}]")
    for _, f in flags.iterrows():
        print(f"flag ({f['judge_id']}): {f['flag_reason']}")
    for _, g in gaps.iterrows():
        print(f"any-refusal gap {g['name_group']} - {g['vs_group']} ({g['judge_id']}): prediction-powered "
              f"{100 * g['diff']:+.1f} pts [{100 * g['diff_ci_tn_low']:.1f}, {100 * g['diff_ci_tn_high']:.1f}], "
              f"judge alone {100 * g['judge_diff']:+.1f}")


def add_label_parser(sub) -> None:
    """Add ``qos label`` (sample, import) to the sub-command parser ``sub``."""
    label = sub.add_parser("label", help="human labels of a model's outputs: draw a sample, import the labels")
    lsub = label.add_subparsers(dest="label_command", required=True)
    sa = lsub.add_parser("sample", help="draw a seeded sample of a model's judged outputs for annotators")
    sa.add_argument("--model", required=True, help="model key whose outputs to sample")
    sa.add_argument("--per-group", type=int, required=True, metavar="N", help="outputs per name group")
    sa.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    sa.add_argument("--out", required=True, metavar="FILE",
                    help="writes FILE.csv, FILE.json (Label Studio tasks) and FILE.label_config.xml")
    sa.set_defaults(func=cmd_sample)
    im = lsub.add_parser("import", help="import labels (the sample CSV, or a Label Studio JSON / JSON-MIN export)")
    im.add_argument("path")
    im.add_argument("--model", required=True, help="model key the sample was drawn from")
    im.add_argument("--annotator", help="annotator name for rows that do not give one")
    im.set_defaults(func=cmd_import)

