"""The regression gate: did the newest checkpoint of a training run make the disparity worse?

For each checkpoint family, the newest checkpoint with results is held against the previous one
(``checkpoint_changes``, ``against = 'previous'``) on the primary family (each group vs the reference group
on the primary measure). It fails when, for some group and cell,
- the gap **grew**: it moved away from 0 (``|gap_a| > |gap_b|``, the change on the side of the new gap: a
  gap that flipped sign and widened counts too) with a paired template-flip p-value, adjusted within the
  primary family of the pair, below ``level``; or
- the gap's size exceeds ``ceiling`` (an absolute share: 0.10 = 10 points; 0 = no ceiling).
A family with one checkpoint can only fail the ceiling. The verdict names each group, the change with its
template x name interval and p-values, and a few outputs whose label changed between the two checkpoints
(same prompt and sample). Read by the ``metric_tables`` asset check, the alert sensor and ``qos trend``.
Pure: no dagster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd

from qos_pipeline.metrics.stats.cells import MEASURES
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY
from qos_pipeline.metrics.wording import fmt_ci, fmt_p

EXAMPLES = 3  # outputs that changed label, per failing group


@dataclass(frozen=True)
class GateSettings:
    """``level``: the adjusted p-value below which a grown gap fails the gate; ``ceiling``: the largest gap
    size a newest checkpoint may have (a share; 0: none)."""

    level: float = ALPHA
    ceiling: float = 0.0

    def __post_init__(self):
        if not 0 < self.level < 1:
            raise ValueError(f"gate level {self.level}: give a p-value level between 0 and 1, e.g. 0.05")
        if not 0 <= self.ceiling <= 1:
            raise ValueError(f"gate ceiling {self.ceiling}: give a gap size between 0 and 1 (0.10 = 10 points; "
                             "0: no ceiling)")


@dataclass
class FamilyVerdict:
    """One family's newest checkpoint: passed, and every reason it failed (one dict per group and cell)."""

    family: str
    model_key: str
    checkpoint_order: int
    step: int | None
    previous_key: str | None = None
    previous_order: int | None = None
    failures: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No failure."""
        return not self.failures


@dataclass
class Verdict:
    """The regression gate's verdict over every checkpoint family, with its settings and time."""

    passed: bool
    level: float
    ceiling: float
    families: list[FamilyVerdict]
    checked_at: str

    def summary(self) -> str:
        """One line per family, each failure with its group, change, interval and p-value."""
        if not self.families:
            return ("no checkpoint family with gaps to gate (a family's checkpoints need results for the reference "
                    "group and at least one other group)")
        return "; ".join(family_line(f) for f in self.families)

    def to_json(self) -> dict:
        """Plain JSON types (a missing interval is null, never NaN)."""
        out = asdict(self)
        for fam, data in zip(self.families, out["families"]):
            data["passed"] = fam.passed
        out["summary"] = self.summary()
        return _plain(out)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    return None if isinstance(value, float) and value != value else value


def family_line(f: FamilyVerdict) -> str:
    """``FAMILY: checkpoint 3 (KEY, step 300) vs 2 (KEY) FAILED: muslim ... grew +50.0 pts [...]``."""
    where = f"{f.family}: checkpoint {f.checkpoint_order} ({f.model_key}"
    where += f", step {f.step})" if f.step is not None else ")"
    against = f" vs {f.previous_order} ({f.previous_key})" if f.previous_key else " (no earlier comparable checkpoint)"
    if f.passed:
        return f"{where}{against} passed"
    return f"{where}{against} FAILED: " + ", ".join(x["text"] for x in f.failures)


def grew(gap: float, gap_before: float) -> bool:
    """Whether a gap moved away from 0: larger in size, the change on the side of the new gap."""
    return abs(gap) > abs(gap_before) and (gap - gap_before > 0) == (gap > 0)


def available(con) -> bool:
    """Whether the warehouse has the checkpoint tables (a build by an older version has not)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'checkpoint_trend'").fetchone()[0])


def evaluate(con, settings: GateSettings = GateSettings()) -> Verdict:
    """The gate on a warehouse (a DuckDB connection, read-only is enough); no family (nothing to gate) on a
    warehouse built before checkpoint tables existed."""
    if not available(con):
        return Verdict(True, settings.level, settings.ceiling, [], datetime.now(UTC).isoformat())
    newest = con.execute("""
        SELECT checkpoint_family, arg_max(model_key, checkpoint_order) AS model_key,
               max(checkpoint_order) AS checkpoint_order, arg_max(step, checkpoint_order) AS step
        FROM checkpoint_trend GROUP BY ALL ORDER BY ALL""").fetchall()
    families = []
    for family, key, order, step in newest:
        verdict = FamilyVerdict(family, key, int(order), None if pd.isna(step) else int(step))
        verdict.failures += _growth(con, verdict, settings)
        if settings.ceiling > 0:
            verdict.failures += _ceiling(con, verdict, settings)
        families.append(verdict)
    return Verdict(all(f.passed for f in families), settings.level, settings.ceiling, families,
                   datetime.now(UTC).isoformat())


def _growth(con, verdict: FamilyVerdict, settings: GateSettings) -> list[dict]:
    rows = con.execute(f"""SELECT * FROM checkpoint_changes WHERE checkpoint_family = ? AND model_key_a = ?
                           AND against = 'previous' AND family = '{PRIMARY}' ORDER BY ALL""",
                       [verdict.family, verdict.model_key]).df()
    if rows.empty:
        return []
    verdict.previous_key, verdict.previous_order = rows["model_key_b"].iloc[0], int(rows["checkpoint_order_b"].iloc[0])
    failures = []
    for row in rows.itertuples():
        if pd.isna(row.p_adjusted) or not grew(row.gap_a, row.gap_b) or row.p_adjusted >= settings.level:
            continue
        text = (f"{row.name_group} {row.measure.replace('_', ' ')} gap vs {row.vs_group} grew "
                f"{100 * row.diff_of_gaps:+.1f} pts {fmt_ci(row.ci_tn_low, row.ci_tn_high)} "
                f"({100 * row.gap_b:+.1f} -> {100 * row.gap_a:+.1f}), p_adj {fmt_p(row.p_adjusted)}")
        failures.append({
            "reason": "grew", "text": text, "group": row.name_group, "vs_group": row.vs_group,
            "measure": row.measure, "prompt_format": row.prompt_format, "judge_id": row.judge_id,
            "gap": row.gap_a, "gap_previous": row.gap_b, "change": row.diff_of_gaps,
            "ci_low": row.ci_tn_low, "ci_high": row.ci_tn_high, "p_value": row.p_value,
            "p_adjusted": row.p_adjusted, "examples": changed_outputs(con, row)})
    return failures


def _ceiling(con, verdict: FamilyVerdict, settings: GateSettings) -> list[dict]:
    rows = con.execute(f"""SELECT * FROM checkpoint_trend WHERE checkpoint_family = ? AND model_key = ?
                           AND family = '{PRIMARY}' AND abs(diff) > ? ORDER BY ALL""",
                       [verdict.family, verdict.model_key, settings.ceiling]).df()
    return [{"reason": "ceiling", "group": r.name_group, "vs_group": r.vs_group, "measure": r.measure,
             "prompt_format": r.prompt_format, "judge_id": r.judge_id, "gap": r.diff,
             "ci_low": r.diff_ci_tn_low, "ci_high": r.diff_ci_tn_high,
             "text": f"{r.name_group} {r.measure.replace('_', ' ')} gap vs {r.vs_group} "
                     f"{100 * r.diff:+.1f} pts {fmt_ci(r.diff_ci_tn_low, r.diff_ci_tn_high)} exceeds the ceiling "
                     f"{100 * settings.ceiling:.1f}"} for r in rows.itertuples()]


def changed_outputs(con, row, limit: int = EXAMPLES) -> list[dict]:
    """Up to ``limit`` outputs of the group whose label changed on the measure between checkpoint B and A
    (the same prompt and sample), those that moved with the gap first."""
    labels = list(MEASURES[row.measure])
    found = con.execute("""
        SELECT a.name, a.prompt_text, b.label AS label_before, a.label AS label_after, a.response,
               list_contains($labels, a.label) AS now_counted
        FROM judged a JOIN judged b USING (prompt_id, sample, prompt_format, judge_id)
        WHERE a.model_key = $ka AND a.model_version = $va AND a.gen_config_hash = $ga
          AND b.model_key = $kb AND b.model_version = $vb AND b.gen_config_hash = $gb
          AND a.prompt_format = $pf AND a.judge_id = $j AND a.name_group = $g
          AND list_contains($labels, a.label) <> list_contains($labels, b.label)
        ORDER BY (list_contains($labels, a.label) = $up) DESC, a.prompt_id, a.sample LIMIT $n""",
        {"labels": labels, "ka": row.model_key_a, "va": row.model_version_a, "ga": row.gen_config_hash_a,
         "kb": row.model_key_b, "vb": row.model_version_b, "gb": row.gen_config_hash_b, "pf": row.prompt_format,
         "j": row.judge_id, "g": row.name_group, "up": bool(row.diff_of_gaps > 0), "n": limit}).df()
    return [{"name": r.name, "prompt": r.prompt_text, "before": r.label_before, "after": r.label_after,
             "response": r.response[:300]} for r in found.itertuples()]
