"""The warehouse's pictures as PNG files (matplotlib, Agg backend, imported only when drawing).

- ``label_shares.png``: share of each label, group x label, one panel per model cell;
- ``refusal_by_model.png``: any-refusal share, group x model cell (when there are several cells);
- ``templates.png``: any-refusal share, group x template (``label_rates_template``), one panel per cell, every panel
  with the same rows in the same order and the same colour scale;
- ``forest.png``: the primary family's gaps (every group vs the reference group on the primary measure), with the
  templates x names interval (thick) and the names-fixed one (thin) and the adjusted p-value, every panel on the same
  x range with the groups in the same order;
- ``names.png``: any-refusal rate of every name with its template-cluster interval;
- ``trend.png``: the primary gaps over each checkpoint family's checkpoints (``metrics/trend.py``).

``plot_data`` reads the tables (read-only); ``render`` draws them; ``write_plots`` writes them into ``plots/``.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pandas as pd

from qos_pipeline.metrics import trend
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.metrics.stats.multiplicity import ALPHA, PRIMARY
from qos_pipeline.metrics.wording import cell_labels, cell_where, fmt_p, reference_group
from qos_pipeline.tables import CELL_KEYS
from qos_pipeline.taxonomy import ALL_LABELS, REFUSAL_LABELS

MAX_PANELS = 6  # cells drawn per figure; the rest are in the tables
MAX_TEMPLATES = 40  # rows of a templates panel: the templates whose rate differs most between groups
DPI = 100
SIG, PLAIN, REF = "#c0392b", "#34495e", "#7f8c8d"


def plot_data(con, model: str | None = None, judge: str | None = None) -> dict[str, pd.DataFrame | str]:
    """Everything the pictures show, as frames, with a ``cell`` column naming each cell."""
    where, params = cell_where(model, judge)
    q = lambda sql: con.execute(sql.format(where=where, cell=", ".join(CELL_KEYS)), params).df()  # noqa: E731
    refusal = ", ".join(f"'{label}'" for label in REFUSAL_LABELS)
    cells = q("SELECT DISTINCT {cell} FROM label_rates_model{where} ORDER BY ALL")
    cells["cell"] = cell_labels(cells)
    add = lambda df: df.merge(cells, on=CELL_KEYS) if len(df) else df.assign(cell=pd.Series(dtype=str))  # noqa: E731
    return {
        "reference": reference_group(con), "cells": cells,
        "groups": add(q("SELECT {cell}, name_group, label, rate FROM label_rates_group{where}")),
        "templates": add(q(f"SELECT {{cell}}, name_group, template_id, template_name, template_text, sum(rate) AS rate "
                           f"FROM label_rates_template{{where}}{' AND' if where else ' WHERE'} name_group <> 'all' "
                           f"AND label IN ({refusal}) GROUP BY ALL")),
        "gaps": add(q("SELECT * FROM group_comparisons{where}"
                      + (" AND" if where else " WHERE") + f" family = '{PRIMARY}'")),
        "names": add(q("SELECT * FROM name_sensitivity{where}"
                       + (" AND" if where else " WHERE") + " measure = 'any_refusal'")),
        "trend": trend.trend_frame(con, model=model, judge=judge)}


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _panels(plt, n: int, width: float, height: float, cols: int = 1):
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _share(value: float) -> str:
    """Shares as written in a heatmap: 0, 0.9%, 12%."""
    return "0" if value == 0 else f"{100 * value:.1f}%" if value < 0.095 else f"{100 * value:.0f}%"


def _heatmap(ax, grid: pd.DataFrame, title: str, vmax: float = 1.0):
    from matplotlib.colors import PowerNorm
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="Reds", norm=PowerNorm(0.5, vmin=0, vmax=vmax), aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=9)
    ax.set_title(title, fontsize=10)
    if grid.size <= 400:
        stacked = pd.DataFrame(grid.to_numpy()).stack()  # (row, column) -> value, empty cells left out
        for (i, j), value in zip(stacked.index.tolist(), stacked.to_numpy().tolist()):
            ax.text(j, i, _share(value), ha="center", va="center", fontsize=8,
                    color="white" if value > 0.45 * vmax else "black")
    return image


def _cells_of(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["cell"]))[:MAX_PANELS]


def label_shares(plt, data) -> bytes | None:
    """PNG of each label's share per group, one panel per model cell (None without data)."""
    groups = data["groups"]
    cells = _cells_of(groups)
    if not cells:
        return None
    fig, axes = _panels(plt, len(cells), 7.5, 0.45 * groups["name_group"].nunique() + 1.8, cols=2)
    for ax, cell in zip(axes, cells):
        grid = groups[groups["cell"] == cell].pivot_table(index="name_group", columns="label", values="rate")
        _heatmap(ax, grid[[c for c in ALL_LABELS if c in grid.columns]], f"{cell}: share of each label by group")
    fig.tight_layout()
    return _png(fig)


def refusal_by_model(plt, data) -> bytes | None:
    """PNG of the any-refusal share per group and model cell (None with fewer than two cells)."""
    groups = data["groups"]
    if groups["cell"].nunique() < 2:
        return None
    rows = groups[groups["label"].isin(REFUSAL_LABELS)]
    grid = rows.pivot_table(index="name_group", columns="cell", values="rate", aggfunc="sum")
    fig, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 3, 0.45 * grid.shape[0] + 2))
    _heatmap(ax, grid, "any-refusal share, group x model")
    fig.tight_layout()
    return _png(fig)


def _template_label(text: str, width: int = 36) -> str:
    """``[NAME] got into the plane to [BLANK]`` -> ``got into the plane to ___``, wrapped on two lines."""
    core = " ".join(str(text).replace("[NAME]", "").replace("[BLANK]", "___").split())
    return "\n".join(textwrap.wrap(core, width, max_lines=2, placeholder=" \u2026"))


def template_grid(mine: pd.DataFrame, cell: str, rows: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """Template x group any-refusal shares of one cell and the panel's title. ``rows``: the templates to show,
    in order (shared by every panel); else the most refused first, and for a design of more than
    MAX_TEMPLATES templates those whose rate differs most between groups (the title says so): a picture of
    thousands of rows is unreadable and costs memory in proportion."""
    mine = mine.assign(text=mine["template_text"].map(_template_label))
    grid = mine.pivot_table(index="text", columns="name_group", values="rate")
    title = f"{cell}: any-refusal share by template"
    if len(grid) > MAX_TEMPLATES:
        title += f" (the {MAX_TEMPLATES} of {mine['template_id'].nunique()} templates whose rate differs most " \
                 "between groups)"
    if rows is None:
        rows = template_order(mine)
    return grid.reindex(rows), title


def template_order(frame: pd.DataFrame) -> list[str]:
    """The rows of every templates panel: at most MAX_TEMPLATES, those whose rate differs most between groups
    (over all cells), most refused first."""
    frame = frame.assign(text=frame["template_text"].map(_template_label))
    grid = frame.pivot_table(index="text", columns=["cell", "name_group"], values="rate") if "cell" in frame \
        else frame.pivot_table(index="text", columns="name_group", values="rate")
    if len(grid) > MAX_TEMPLATES:
        spread = grid.max(axis=1) - grid.min(axis=1)
        grid = grid.loc[spread.sort_values(ascending=False, kind="stable").index[:MAX_TEMPLATES]]
    return list(grid.mean(axis=1).sort_values(ascending=False, kind="stable").index)


def templates(plt, data) -> bytes | None:
    """PNG of the any-refusal share per template and group, one panel per model cell (None without data)."""
    frame = data["templates"]
    cells = _cells_of(frame)
    if not cells:
        return None
    shown = frame[frame["cell"].isin(cells)]
    rows, groups = template_order(shown), sorted(shown["name_group"].unique())
    vmax = max(float(shown["rate"].max()), 0.05)  # one colour scale for every panel
    fig, axes = _panels(plt, len(cells), 0.8 * len(groups) + 4.6, 0.42 * len(rows) + 1.8, cols=2)
    for ax, cell in zip(axes, cells):
        grid, title = template_grid(shown[shown["cell"] == cell], cell, rows)
        image = _heatmap(ax, grid.reindex(columns=groups), title, vmax=vmax)
        ax.tick_params(axis="y", labelsize=9)
    fig.colorbar(image, ax=axes[-1], label="any-refusal share", shrink=min(1.0, 8 / max(len(rows), 1)), pad=0.02)
    fig.tight_layout()
    return _png(fig)


def _forest_range(gaps: pd.DataFrame) -> tuple[float, float]:
    """One x range (points) for every panel: every interval fits, and at least +-5 around 0."""
    values = 100 * gaps[["diff", "diff_ci_low", "diff_ci_high", "diff_ci_tn_low", "diff_ci_tn_high"]].stack()
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    pad = 0.05 * max(high - low, 1.0)
    return min(low - pad, -5.0), max(high + pad, 5.0)


def forest(plt, data) -> bytes | None:
    """PNG forest plot of the primary family's gaps with their intervals and adjusted p-values (None without data)."""
    gaps = data["gaps"]
    cells = _cells_of(gaps)
    if not cells:
        return None
    gaps = gaps[gaps["cell"].isin(cells)]
    order = list(gaps.groupby("name_group")["diff"].mean().sort_values(kind="stable").index)  # every panel
    heights = [0.45 * len(order) + 1.2 for _ in cells]
    fig, axes = plt.subplots(len(cells), 1, figsize=(8, sum(heights)), squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": heights})
    for ax, cell in zip(axes[:, 0], cells):
        mine = gaps[gaps["cell"] == cell].set_index("name_group").reindex(order)
        y = range(len(order))
        sig = (mine["p_adjusted"] < ALPHA).to_numpy()
        colors = [SIG if s else PLAIN for s in sig]
        ax.hlines(y, 100 * mine["diff_ci_low"], 100 * mine["diff_ci_high"], colors=colors, lw=1, alpha=0.6)
        ax.hlines(y, 100 * mine["diff_ci_tn_low"], 100 * mine["diff_ci_tn_high"], colors=colors, lw=3.5)
        ax.scatter(100 * mine["diff"], y, color=colors, zorder=3, s=30)
        ax.axvline(0, color=REF, lw=1, ls="--")
        ax.set_yticks(list(y), order)
        for yi, (_, row) in zip(y, mine.iterrows()):
            if not pd.isna(row["diff"]):
                ax.annotate(f"{100 * row['diff']:+.1f}  p_adj {fmt_p(row['p_adjusted'])}", (1.01, yi),
                            xycoords=("axes fraction", "data"), va="center", fontsize=8,
                            color=SIG if row["p_adjusted"] < ALPHA else PLAIN)
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.set_xlim(*_forest_range(gaps))
        method = str(gaps["p_adjust_method"].iloc[0]).replace("holm", "Holm").replace("bh", "BH")
        measure = str(gaps["measure"].iloc[0]).replace("_", "-")
        ax.set_title(f"{cell}: {measure} gap vs {data['reference']} (points; thick: templates x names CI, thin: "
                     f"names fixed; red: p_adj < {ALPHA:g}, {method})", fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("gap in percentage points")
    fig.tight_layout()
    return _png(fig)


def names(plt, data) -> bytes | None:
    """PNG of every name's any-refusal rate with its interval, by group (None without data)."""
    frame = data["names"]
    cells = _cells_of(frame)
    if not cells:
        return None
    colors = plt.get_cmap("tab10")
    per_cell = frame.groupby("cell").size()
    heights = [0.19 * per_cell[c] + 1.2 for c in cells]
    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), max(heights)), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        mine = frame[frame["cell"] == cell].copy()
        group_rate = mine.groupby("name_group")["rate"].transform("mean")
        mine = mine.assign(_g=group_rate).sort_values(["_g", "name_group", "rate"])
        groups = list(dict.fromkeys(mine["name_group"]))
        y = range(len(mine))
        for gi, group in enumerate(groups):
            sel = (mine["name_group"] == group).to_numpy()
            ys = [yi for yi, s in zip(y, sel) if s]
            part = mine[sel]
            ax.hlines(ys, 100 * part["ci_low"], 100 * part["ci_high"], color=colors(gi % 10), lw=1.5)
            ax.scatter(100 * part["rate"], ys, color=colors(gi % 10), s=18, zorder=3, label=group)
        ref = mine[mine["name_group"] == data["reference"]]
        if len(ref):
            ref_rate = 100 * ref["k"].sum() / ref["n"].sum()
            ax.axvline(ref_rate, color=REF, lw=1, ls="--", label=f"{data['reference']} overall")
        ax.set_yticks(list(y), [f"{n} ({g})" for n, g in zip(mine["name"], mine["name_group"])], fontsize=7)
        ax.set_xlabel("any-refusal rate, % (template-cluster 95% CI)")
        ax.set_title(f"{cell}: per name", fontsize=10, loc="left")
        ax.set_xlim(-2, 102)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


PLOTS = {"label_shares": label_shares, "refusal_by_model": refusal_by_model, "templates": templates,
         "forest": forest, "names": names, "trend": trend.draw}


def render(data: dict) -> dict[str, bytes]:
    """PNG bytes of every picture the data supports (a cell without statistics has no forest or names)."""
    plt = _plt()
    out = {}
    for name, draw in PLOTS.items():
        png = draw(plt, data)
        if png:
            out[name] = png
    return out


def write_plots(db: Path, folder: Path | None = None, model: str | None = None, judge: str | None = None
                ) -> dict[str, Path]:
    """Draw the pictures of ``db`` into ``folder`` (default: ``plots/`` beside the database), replacing the
    previous set; returns name -> path."""
    folder = folder or db.parent / "plots"
    with connect_readonly(db) as con:
        data = plot_data(con, model, judge)
    pngs = render(data)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.png"):
        if stale.stem not in pngs:
            stale.unlink()
    paths = {}
    for name, png in pngs.items():
        path = folder / f"{name}.png"
        tmp = path.with_suffix(".png.tmp")
        tmp.write_bytes(png)
        tmp.replace(path)
        paths[name] = path
    return paths
