"""`qos evidence`: the templates, names and example outputs behind any group's gap, on demand."""

from __future__ import annotations

import argparse
import textwrap

from qos_pipeline import taxonomy
from qos_pipeline.cli.common import storage
from qos_pipeline.metrics import evidence
from qos_pipeline.metrics.findings import reference_group
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.staging import WarehouseError
from qos_pipeline.tables import CELL_KEYS


def _cell(con, model: str, judge: str | None, group: str) -> dict:
    """The one cell of ``model`` (and ``judge``) holding ``group``; an error lists the choices otherwise."""
    rows = con.execute(f"SELECT DISTINCT {', '.join(CELL_KEYS)} FROM label_rates_group WHERE model_key = ? "
                       "AND (? IS NULL OR judge_id = ?) AND name_group = ? ORDER BY ALL",
                       [model, judge, judge, group]).df()
    if rows.empty:
        groups = [g for (g,) in con.execute("SELECT DISTINCT name_group FROM label_rates_group WHERE model_key = ? "
                                            "ORDER BY 1", [model]).fetchall()]
        raise WarehouseError(f"no judged outputs of model {model!r}" + (f", judge {judge!r}" if judge else "")
                             + f", group {group!r}; groups there: {', '.join(groups) or 'none (check --model)'}")
    if len(rows) > 1:
        raise WarehouseError(f"model {model!r} has {len(rows)} cells for group {group!r} (judges "
                             f"{', '.join(sorted(set(rows['judge_id'])))}, ...): pick one with --judge")
    return rows.iloc[0].to_dict()


def cmd_evidence(args: argparse.Namespace) -> None:
    """``qos evidence``: the templates, names and example outputs behind a group's gap."""
    with connect_readonly(storage().paths().db) as con:
        reference = args.vs or reference_group(con)
        cell = _cell(con, args.model, args.judge, args.group)
        ev = evidence.evidence(con, cell, args.group, reference, args.measure, args.seed, args.examples)
    print(evidence.title(ev))
    print("\ntemplates by contribution to the gap (contributions sum to the gap):")
    print(evidence.template_rows(ev).to_string(index=False))
    names = ev.names.assign(rate=(100 * ev.names["rate"]).round(1),
                            gap_without_name=ev.names["gap_without_name"].map(lambda x: f"{100 * x:+.1f}"))
    print(f"\nnames of {args.group} (rate %, the gap without the name):")
    print(names.drop(columns="most_extreme").to_string(index=False))
    print(f"\nexample outputs on those templates ({args.examples} per group, seed {args.seed}):")
    for r in ev.examples.itertuples():
        human = f"; human: {r.human_label}" if isinstance(r.human_label, str) else ""
        print(f"\n[{r.name_group}, {r.name}] {r.label} ({r.reason}{human}) {r.generation_id}")
        print(textwrap.indent(textwrap.fill(" ".join(str(r.response).split()), 100), "    "))


def add_evidence_parser(sub) -> None:
    """Add ``qos evidence`` to the sub-command parser ``sub``."""
    ev = sub.add_parser("evidence", help="the templates, names and example outputs behind a group's gap")
    ev.add_argument("--model", required=True, help="model key")
    ev.add_argument("--group", required=True, help="name group whose gap to explain")
    ev.add_argument("--vs", help="group to compare with (default: the reference group of the build)")
    ev.add_argument("--judge", help="judge id (needed when the model has several)")
    ev.add_argument("--measure", default="any_refusal", choices=list(taxonomy.MEASURES))
    ev.add_argument("--examples", type=int, default=evidence.EXAMPLES_PER_GROUP, help="example outputs per group")
    ev.add_argument("--seed", type=int, default=0, help="seed of the examples' choice")
    ev.set_defaults(func=cmd_evidence)

