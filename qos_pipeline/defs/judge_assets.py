"""Judge validation as an asset: each configured judge against each human-labelled file.

Thin over ``qos_pipeline.judge_eval`` (the same step as ``qos judge validate``). The figures are staged
as Parquet and loaded into the ``judge_validations*`` and ``refusal_rates_corrected`` tables by the next
``metric_tables`` build (the single DuckDB writer).
"""

import os

import dagster as dg

from qos_pipeline.judging.evaluation.evaluate import evaluate, stage
from qos_pipeline.defs.resources import AuditConfig
from qos_pipeline.checks import CheckOutcome

VALIDATION_CHECKS = ["judge_validations_figures_in_range", "judge_validations_error_gaps"]


class ValidationConfig(dg.Config):
    """Labelled files (pilot CSV, or CSV/JSONL with prompt, response, label); default: the paths in
    ``QOS_VALIDATION_FILES`` (separated by ``os.pathsep``). ``limit`` > 0 judges a seeded random subset."""

    files: list[str] = []
    limit: int = 0
    seed: int = 0


def _in_range(reports: list[dict]) -> CheckOutcome:
    bad = [f"{r['judge_id']}@{r['dataset']}" for r in reports
           if not all(0 <= r[k] <= 1 for k in ("accuracy", "macro_f1")) or r["n"] < 1]
    return CheckOutcome(VALIDATION_CHECKS[0], not bad, f"{len(reports)} validations; out of range: {bad or 'none'}",
                        {"validations": len(reports)})


def _gaps(reports: list[dict]) -> CheckOutcome:
    """Warning: a group's judge error differs from the reference group's enough to fake a disparity."""
    flags = [f"{r['judge_id']}: {f}" for r in reports for f in r["flags"]]
    return CheckOutcome(VALIDATION_CHECKS[1], not flags, f"{len(flags)} group(s) flagged",
                        {"flags": "\n".join(flags) or "none"}, blocking=False)


def _result(o: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=o.name, passed=o.passed, description=o.description, metadata=o.metadata,
                               severity=dg.AssetCheckSeverity.ERROR if o.blocking else dg.AssetCheckSeverity.WARN)


@dg.asset(group_name="warehouse", kinds={"python", "parquet"},
          check_specs=[dg.AssetCheckSpec(VALIDATION_CHECKS[0], asset="judge_validations"),
                       dg.AssetCheckSpec(VALIDATION_CHECKS[1], asset="judge_validations", blocking=False)])
def judge_validations(context: dg.AssetExecutionContext, config: ValidationConfig, audit: AuditConfig
                      ) -> dg.MaterializeResult:
    """Each configured judge compared with human labels: accuracy, macro-F1, Cohen's kappa, refusal-vs-not
    F1, per-label precision/recall and the confusion matrix, overall and per name group, with groups
    flagged where the judge's refusal error differs from the reference group's enough to explain a
    measured disparity. Grain: one row per (judge, labelled file, group) in ``judge_validations``;
    ``refusal_rates_corrected`` uses these error rates at the next ``metric_tables`` build."""
    files = config.files or [f for f in os.environ.get("QOS_VALIDATION_FILES", "").split(os.pathsep) if f]
    paths = audit.paths()
    reports, staged = [], []
    try:
        for file in files:
            for spec in audit.judges:
                ev = evaluate(file, spec, paths, audit.reference_group, limit=config.limit or None,
                                         seed=config.seed, run_id=context.run_id)
                reports.append(ev.report)
                staged += stage(ev.frames, paths.staging, ev.judge_id, ev.dataset)
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}") from exc
    table = "\n".join(f"| {r['judge_id']} | {r['dataset']} | {r['n']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} "
                      f"| {r['kappa']:.3f} | {r['refusal_f1']:.3f} |" for r in reports)
    summary = "| judge | data | n | accuracy | macro-F1 | kappa | refusal F1 |\n|---|---|---|---|---|---|---|\n" + table
    return dg.MaterializeResult(
        metadata={"files": ", ".join(files) or "none configured (set QOS_VALIDATION_FILES)",
                  "validations": dg.MetadataValue.md(summary if reports else "none"), "staged": len(staged)},
        check_results=[_result(_in_range(reports)), _result(_gaps(reports))])
