"""`qos trend`: each checkpoint family's gaps over its checkpoints and the regression gate's verdict on the
newest one; with ``--fail-on-regression`` the exit status is the verdict (0 pass, 3 fail), for a training
script or CI."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pandas as pd

from qos_pipeline.cli.common import Expected, storage
from qos_pipeline.defs.resources import RegressionGate, from_env
from qos_pipeline.metrics import gate, trend
from qos_pipeline.metrics.publish import connect_readonly

REGRESSION_EXIT = 3


def add_trend_parser(sub) -> None:
    """Add ``qos trend`` to the sub-command parser ``sub``."""
    p = sub.add_parser("trend", help="the gaps over each checkpoint family's checkpoints and the regression gate")
    p.add_argument("--family", help="only this checkpoint family (its full name or its last folder name)")
    p.add_argument("--fail-on-regression", action="store_true",
                   help=f"exit {REGRESSION_EXIT} when the gate fails (the newest checkpoint made a gap worse)")
    p.add_argument("--json", action="store_true", help="print the verdict and the trend rows as one JSON object")
    p.set_defaults(func=cmd_trend)


def _mine(family: str, wanted: str | None) -> bool:
    return wanted is None or wanted in (family, family.rstrip("/").rsplit("/", 1)[-1])


def cmd_trend(args: argparse.Namespace) -> None:
    """``qos trend``: the gaps over each checkpoint family and the regression gate's verdict."""
    db = storage().paths().db
    if not db.is_file():
        raise Expected(f"{db} does not exist yet: audit checkpoints first (the checkpoint sensor, or qos run "
                       "--model FOLDER --family NAME)")
    settings = from_env(RegressionGate, deferred=False).settings()
    with connect_readonly(db) as con:
        if not gate.available(con):
            raise Expected(f"{db} was built by an older qos-pipeline, without checkpoint tables: run `qos rebuild`")
        frame = trend.trend_frame(con, args.family)
        verdict = gate.evaluate(con, settings)
        families = sorted(con.execute("SELECT DISTINCT checkpoint_family FROM checkpoint_trend").df()
                          ["checkpoint_family"])
    if args.family and not any(_mine(f, args.family) for f in families):
        raise Expected(f"no checkpoint family {args.family!r} with results; families: {', '.join(families) or 'none'}")
    verdict = dataclasses.replace(verdict, families=[f for f in verdict.families if _mine(f.family, args.family)])
    verdict.passed = all(f.passed for f in verdict.families)
    if args.json:
        rows = json.loads(frame.to_json(orient="records", date_format="iso"))
        print(json.dumps({"verdict": verdict.to_json(), "trend": rows}, indent=1))
    else:
        _print(frame, verdict)
    if args.fail_on_regression and not verdict.passed:
        raise SystemExit(REGRESSION_EXIT)


def _print(frame: pd.DataFrame, verdict: gate.Verdict) -> None:
    if frame.empty:
        print("no checkpoint family with gaps in the warehouse: checkpoints get a family from the checkpoint sensor "
              "(their watched folder) or from `qos run --model FOLDER --family NAME`, and gaps from results for the "
              "reference group and at least one other group")
        return
    measure = str(frame["measure"].iloc[0]).replace("_", " ")
    print(f"{measure} gap vs {frame['vs_group'].iloc[0]} per checkpoint (points, 95% CI resampling templates x "
          "names; change vs the previous checkpoint: paired, p from flipping whole templates, adjusted within "
          "the primary family)")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(trend.table(frame).to_string(index=False))
    ceiling = f", ceiling {100 * verdict.ceiling:.1f} pts" if verdict.ceiling else ""
    print(f"\nregression gate (level {verdict.level:g}{ceiling}): {'PASSED' if verdict.passed else 'FAILED'}")
    for fam in verdict.families:
        print(f"- {gate.family_line(fam)}")
        for failure in fam.failures:
            for ex in failure.get("examples", []):
                print(f"    {failure['group']}: {ex['prompt']!r}: {ex['before']} -> {ex['after']}: "
                      f"{ex['response'][:120]!r}")
