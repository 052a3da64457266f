"""The gap over a training run's checkpoints: the frame behind the trend picture and ``qos trend``'s table.

``trend.png``: one panel per checkpoint family (and prompt format x judge when a family has several), the
primary gap of every group vs the reference group over the checkpoints, each with its template x name 95%
interval as a band; a checkpoint whose gap grew significantly against the previous one (the gate's test:
``checkpoint_changes``, adjusted p below 0.05) is ringed in red. Drawn by ``plots.render`` with the other
pictures (matplotlib is handed in, so this module does not import it).
"""

from __future__ import annotations

import io

import pandas as pd

from qos_pipeline.metrics.gate import available, grew
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY
from qos_pipeline.metrics.wording import fmt_ci, fmt_p

MAX_PANELS = 6
SIG = "#c0392b"


def trend_frame(con, family: str | None = None, model: str | None = None, judge: str | None = None) -> pd.DataFrame:
    """``checkpoint_trend``'s primary rows with the change against the previous checkpoint beside each
    (``change``, ``change_ci_tn_low/high``, ``change_p_adjusted``: NULL for a family's first); ``family``
    narrows to one family (its full name or its last folder name); ``model`` to the families holding that
    model key; ``judge`` to one judge."""
    if not available(con):
        return pd.DataFrame()
    clauses, params = [f"t.family = '{PRIMARY}'"], []
    if family:
        clauses.append("(t.checkpoint_family = ? OR regexp_extract(t.checkpoint_family, '[^/]+$') = ?)")
        params += [family, family]
    if model:
        clauses.append("t.checkpoint_family IN (SELECT checkpoint_family FROM checkpoints WHERE model_key = ?)")
        params.append(model)
    if judge:
        clauses.append("t.judge_id = ?")
        params.append(judge)
    return con.execute(f"""
        SELECT t.*, c.diff_of_gaps AS change, c.ci_tn_low AS change_ci_tn_low, c.ci_tn_high AS change_ci_tn_high,
               c.p_adjusted AS change_p_adjusted, c.model_key_b AS previous_key
        FROM checkpoint_trend t LEFT JOIN checkpoint_changes c
          ON c.against = 'previous' AND c.checkpoint_family = t.checkpoint_family AND c.model_key_a = t.model_key
         AND c.model_version_a = t.model_version AND c.gen_config_hash_a = t.gen_config_hash
         AND c.prompt_format = t.prompt_format AND c.judge_id = t.judge_id AND c.measure = t.measure
         AND c.name_group = t.name_group
        WHERE {' AND '.join(clauses)}
        ORDER BY t.checkpoint_family, t.prompt_format, t.judge_id, t.name_group, t.checkpoint_order""", params).df()


def table(frame: pd.DataFrame) -> pd.DataFrame:
    """The trend as text columns: one row per family x checkpoint x group (the cell's format and judge when a
    family has several)."""
    if frame.empty:
        return frame
    out = pd.DataFrame({
        "family": frame["checkpoint_family"], "order": frame["checkpoint_order"],
        "step": frame["step"].map(lambda s: "" if pd.isna(s) else str(int(s))), "model_key": frame["model_key"],
        "group": frame["name_group"], "rate": frame["rate"].map(lambda r: f"{100 * r:.1f}%"),
        "ref rate": frame["rate_vs"].map(lambda r: f"{100 * r:.1f}%"),
        "gap, pts [95% CI]": [f"{100 * d:+.1f} {fmt_ci(lo, hi)}" for d, lo, hi in
                              zip(frame["diff"], frame["diff_ci_tn_low"], frame["diff_ci_tn_high"])],
        "change vs previous [95% CI]": ["" if pd.isna(c) else f"{100 * c:+.1f} {fmt_ci(lo, hi)}" for c, lo, hi in
                                        zip(frame["change"], frame["change_ci_tn_low"], frame["change_ci_tn_high"])],
        "p_adj of change": frame["change_p_adjusted"].map(lambda p: "" if pd.isna(p) else fmt_p(p)),
    })
    for key in ("prompt_format", "judge_id"):
        if frame.groupby("checkpoint_family")[key].nunique().max() > 1:
            out[key] = frame[key]
    return out.sort_values(["family", "group", "order"], kind="stable").reset_index(drop=True)


def _panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    keys = ["checkpoint_family", "prompt_format", "judge_id"]
    several = frame.groupby("checkpoint_family")[keys[1:]].nunique().max().max() > 1
    out = []
    for (fam, fmt, judge), part in frame.groupby(keys, sort=True):
        title = str(fam) if not several else f"{fam} ({fmt}, {str(judge).split('.')[0]})"
        out.append((title, part))
    return out[:MAX_PANELS]


def draw(plt, data: dict) -> bytes | None:
    """The trend picture of ``data["trend"]`` (``trend_frame``), or None when no family has a checkpoint."""
    frame = data.get("trend")
    if frame is None or frame.empty:
        return None
    panels = _panels(frame)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (title, part) in zip(axes[:, 0], panels):
        for i, (group, rows) in enumerate(part.groupby("name_group", sort=True)):
            x, color = rows["checkpoint_order"].to_numpy(), colors(i % 10)
            low, high = 100 * rows["diff_ci_tn_low"], 100 * rows["diff_ci_tn_high"]
            ax.fill_between(x, low, high, color=color, alpha=0.15)
            ax.vlines(x, low, high, color=color, alpha=0.5, lw=1)  # visible where a family has one checkpoint
            ax.plot(x, 100 * rows["diff"], marker="o", color=color, label=group)
            worse = rows[[p < ALPHA and grew(d, d - c) for p, d, c in
                          zip(rows["change_p_adjusted"], rows["diff"], rows["change"])]]
            ax.scatter(worse["checkpoint_order"], 100 * worse["diff"], s=160, facecolors="none", edgecolors=SIG,
                       linewidths=2, zorder=4)
        ax.axhline(0, color="#7f8c8d", lw=1, ls="--")
        ticks = part.drop_duplicates("checkpoint_order").sort_values("checkpoint_order")
        ax.set_xticks(ticks["checkpoint_order"], [f"{o}\n" + ("" if pd.isna(s) else f"step {int(s)}")
                                                  for o, s in zip(ticks["checkpoint_order"], ticks["step"])])
        measure = str(part["measure"].iloc[0]).replace("_", "-")
        ax.set_title(f"{title}: {measure} gap vs {part['vs_group'].iloc[0]} (band: templates x names 95% CI; "
                     f"red ring: grew vs previous, p_adj < {ALPHA:g})", fontsize=9, loc="left")
        ax.set_ylabel("gap, points")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("checkpoint (order in its family)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
