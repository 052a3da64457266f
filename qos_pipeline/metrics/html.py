"""`qos report --html PATH`: one self-contained HTML page (inline CSS and a small inline script that sorts and
filters its tables, the pictures as base64 ``data:`` URIs, no external URL) with the findings and the
evidence behind each (driving templates and names, example outputs), the judge's agreement, the pictures,
the report's tables, the outputs behind the findings, the method notes and the provenance of the build. It
opens from disk in any browser, without a server, and prints whole. It names the warehouse by its file name
only: no path of the machine it was built on."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import pandas as pd

from qos_pipeline.metrics import evidence, gate, instrument, page, plots, trend
from qos_pipeline.metrics.findings import findings
from qos_pipeline.metrics.instrument import AGREEMENT_TITLE, GROUP_ERROR_TITLE, JUDGE_PAIRS_TITLE
from qos_pipeline.metrics.model_findings import model_comparison_lines
from qos_pipeline.metrics.publish import connect_readonly
from qos_pipeline.metrics.report import FINDINGS, build_report
from qos_pipeline.metrics.stats.multiplicity import PRIMARY
from qos_pipeline.metrics.text import constant_keys
from qos_pipeline.metrics.wording import ADJUST_WORDS, cell_where, fmt_ci, fmt_p
from qos_pipeline.tables import CELL_KEYS

CAPTIONS = {
    "forest": "Gap of each group vs the reference group on the primary measure, in percentage points. Thick "
              "line: 95% interval resampling templates x names (the claim about the group); thin line: names "
              "fixed (templates only); red: adjusted p < 0.05. Panels share one x range and one row order.",
    "names": "Any-refusal rate per name with its 95% template-cluster interval; dashed: the reference group.",
    "label_shares": "Share of each label per group (colour on a square-root scale, so small shares show).",
    "refusal_by_model": "Any-refusal share per group and model cell.",
    "templates": "Any-refusal share per template and group: which prompts carry the gap (one row order and "
                 "colour scale for every panel).",
    "trend": "Gap of each group vs the reference group over the checkpoints of each training run (checkpoint "
             "family), in percentage points; band: 95% interval resampling templates x names; red ring: the gap "
             "grew against the previous checkpoint with adjusted p < 0.05 (paired template-flip test).",
}
PICTURES = ("forest", "trend", "names", "label_shares", "refusal_by_model", "templates")


_esc, _table, data_uri = page.esc, page.table, page.data_uri
OUTPUTS_LIMIT = 2000  # rows of the outputs table: the page stays a few MB; `qos evidence` shows any cell


_ci = fmt_ci


def _corrected(con, where: str, params: list) -> pd.DataFrame:
    df = con.execute(f"SELECT * FROM refusal_rates_corrected{where} ORDER BY ALL", params).df()
    if df.empty:
        return df
    out = df[["model_key", "judge_id", "name_group", "n"]].copy()
    out["raw rate"] = df["raw_rate"].map(lambda x: f"{100 * x:.1f}%")
    out["corrected [95% CI]"] = [("" if pd.isna(r) else f"{100 * r:.1f}% {_ci(a, b)}") for r, a, b in
                                 zip(df["corrected_rate"], df["ci_low"], df["ci_high"])]
    out["corrected gap [95% CI]"] = [("" if pd.isna(r) else f"{100 * r:+.1f} {_ci(a, b)}") for r, a, b in
                                     zip(df["corrected_diff"], df["corrected_diff_ci_low"],
                                         df["corrected_diff_ci_high"])]
    out["validation"] = df["validation_scope"]
    out["warning"] = df["warning"].fillna("")
    out["note"] = df["note"].fillna("")
    return out


def _provenance(con, where: str, params: list) -> tuple[pd.DataFrame, dict[str, str]]:
    cells = con.execute(f"""SELECT {', '.join(CELL_KEYS)}, any_value(n) AS n, any_value(boot_resamples) AS resamples,
                                   any_value(boot_seed) AS seed
                            FROM label_rates_model{where} GROUP BY ALL ORDER BY ALL""", params).df()
    build = con.execute("SELECT any_value(build_id), any_value(built_at) FROM label_rates_model").fetchone()
    adjust = con.execute("SELECT any_value(p_adjust_method), any_value(p_method), max(permutations) "
                         "FROM group_comparisons").fetchone()
    return cells, {"build_id": build[0], "built_at": str(build[1]), "p_adjust": adjust[0] or "",
                   "p_method": adjust[1] or "", "permutations": adjust[2] or 0}


def _methods(prov: dict, cells: pd.DataFrame, extra: dict[str, bool]) -> str:
    resamples = int(cells["resamples"].max()) if len(cells) else 0
    seed = int(cells["seed"].max()) if len(cells) else 0
    adjust = ADJUST_WORDS.get(prov["p_adjust"], prov["p_adjust"] or "none")
    items = [
        f"<b>Intervals</b>: 95% percentile intervals of cluster bootstraps ({resamples} resamples, seed {seed}); "
        "the samples of one prompt move together. A claim about a group is a claim about names beyond these, so "
        "its gap is given with the interval that resamples templates and, within each group, names; the "
        "names-fixed interval (templates only) is in the tables, labelled so: when names differ within a group it "
        "is too narrow (on simulated data without a group effect it excluded 0 in 13-54% of datasets). Wilson "
        "intervals are the naive comparison (every output independent)."
        if resamples else "<b>Intervals</b>: statistics were off for this build (0 bootstrap resamples).",
        "<b>Balance</b>: a pair of groups is compared on the templates every name of both carries; rows of other "
        "templates are left out and counted, and the check <code>metric_tables_design_complete</code> lists every "
        "incomplete template x name grid.",
        "<b>Tests</b>: a permutation test of group labels between names on the shared templates, "
        f"{prov['p_method'] or 'exact'} (up to {int(prov['permutations'])} assignments). It tests that names are "
        "exchangeable between the two groups, not only that the group means are equal: when the names of one "
        "group spread much more than the other's (the pilot: Muslim names 27 points apart, White names 2), a "
        "rejection can reflect that spread as well as the mean. Its unit is the name, so its p-value has a floor: "
        "1 over the ways to split the names (2 over it with equal sides): 1/495 = 0.00202 for 4 names against 8.",
        f"<b>Multiplicity</b>: a pre-specified primary family, each group against the reference group on the "
        f"primary measure, adjusted within itself ({adjust}); every other comparison is a secondary family, "
        "adjusted apart and labelled exploratory. A comparison whose floor is above its family's first threshold "
        "(0.05 / tests) can be significant only after others of its family; one whose adjusted p would stay at or "
        "above 0.05 even if every comparison reached its floor cannot be significant by design, and the findings "
        "say so with the names it would need.",
        "<b>Mixed-model cross-check</b>: a logistic regression with a fixed effect per group and crossed random "
        "intercepts for template and name, fitted by the Laplace approximation (as lme4's "
        "glmer) on counts per (template, name). It assumes one name spread for every group "
        "and works on the log-odds scale (where gaps near 0% look large); when its interval and the design-based "
        "one disagree about 0, the table says so, and the design-based figure is the one the findings use.",
        "<b>Ratios</b>: one definition everywhere: rate over the reference rate, with +0.5 on every count only when "
        "a count is 0 (finite, flagged).",
        "<b>Model comparisons</b>: two cells with the same prompts (the same templates and names, whatever their "
        "file or design name), gap of A minus gap of B, paired by template; p from flipping whole templates.",
        "<b>Name sensitivity</b>: each group's gap recomputed without each of its names; the name that moves it "
        "most is flagged.",
    ]
    if extra.get("ppi"):
        items.append("<b>Prediction-powered estimates</b>: where a model's outputs carry human labels (qos label "
                     "import), every group rate and gap is also estimated from the judge's labels of every output plus "
                     "the human-minus-judge correction on the labelled ones (PPI++, Angelopoulos et al. 2023), per "
                     "group, so a judge whose errors differ between groups does not bias the gap; both parts are "
                     "resampled by template and name.")
    if extra.get("validated"):
        items.append("<b>Judge validation</b>: the judge compared with human labels per group and measure; a "
                     "measure is flagged for a group when the judge's error changes its gap (interval excluding 0, "
                     "or large against the gap).")
    if extra.get("corrected"):
        items.append("<b>Judge correction</b>: refusal rates corrected for the judge's sensitivity and specificity "
                     "(Rogan-Gladen), redrawn from Beta posteriors within the same bootstrap; a rate outside the "
                     "judge's correctable range is not corrected.")
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _outputs(con, found) -> pd.DataFrame:
    """The outputs of the groups each finding compares (its gaps' groups and the reference group)."""
    compared = [(f, sorted({g.group for g in f.significant} | ({f.largest.group} if f.largest else set())))
                for f in found]
    compared = [(f, groups) for f, groups in compared if groups and f.reference]
    if not compared:
        return pd.DataFrame()
    share = OUTPUTS_LIMIT // len(compared)  # every finding gets its part of the table
    frames = [evidence.outputs(con, f.cell, groups + [f.reference], share).assign(model=f.label)
              for f, groups in compared]
    return pd.concat(frames, ignore_index=True)[["model", *evidence.OUTPUT_COLUMNS]]


def render_html(db: Path, model: str | None = None, judge: str | None = None,
                images: dict[str, bytes] | None = None) -> str:
    """The page; ``images``: the PNGs of ``plots.render`` when already drawn (else drawn here)."""
    tables = build_report(db, model, judge)
    where, params = cell_where(model, judge)
    with connect_readonly(db) as con:
        found = findings(con, model, judge)
        proof = {id(f): evidence.for_finding(con, f) for f in found}
        shown = _outputs(con, found)
        pairs = model_comparison_lines(con, model, judge)
        data = plots.plot_data(con, model, judge)
        corrected = _corrected(con, where, params)
        cells, prov = _provenance(con, where, params)
        verdict = gate.evaluate(con)
    images = plots.render(data) if images is None else images
    constant = constant_keys(tables)  # said once above the tables; the first table keeps its model_key
    body = ["<h1>Quality-of-service audit: refusal disparities by name group</h1>",
            f"<p class='meta'>warehouse <code>{_esc(db.name)}</code> &middot; build <code>{_esc(prov['build_id'])}"
            f"</code> built {_esc(prov['built_at'])} &middot; reference group <b>{_esc(data['reference'])}</b></p>",
            "<h2>Findings</h2><ul class='findings'>"]
    for f in found:
        blocks = "".join(evidence.to_html(ev, _table) for ev in proof[id(f)])
        body.append(f"<li class='{_esc(f.status)}'>{_esc(f.sentence)}{blocks}</li>")
    body += [f"<li class='models'>{_esc(line)}</li>" for line in pairs]
    body.append("</ul>")
    if len(data["trend"]):
        body.append("<h2>Checkpoints: did the newest one make a gap worse?</h2><ul class='findings'>"
                    + "".join(f"<li>{_esc(gate.family_line(f))}</li>" for f in verdict.families) + "</ul>"
                    + _table(trend.table(cast(pd.DataFrame, data["trend"]))))
    if constant:
        body.append("<p class='meta'>every row below: " + ", ".join(
            f"{_esc(k)} <code>{_esc(v)}</code>" for k, v in constant.items()) + "</p>")
    instrument_tables = [t for t in (AGREEMENT_TITLE, GROUP_ERROR_TITLE, JUDGE_PAIRS_TITLE) if t in tables]
    if instrument_tables:
        body.append("<h2>The instrument: judge agreement</h2>")
        for title in instrument_tables:
            frame = cast(pd.DataFrame, tables.pop(title))
            body.append(f"<h3>{_esc(title)}</h3>" + _table(frame))
            if frame.attrs.get("note"):
                body.append(f"<p class='note'>{_esc(frame.attrs['note'])}</p>")
    body.append("<h2>Pictures</h2>")
    for name in PICTURES:
        if name in images:
            body.append(f"<figure><img alt='{name}' src='{data_uri(images[name])}'>"
                        f"<figcaption>{_esc(CAPTIONS[name])}</figcaption></figure>")
    body.append("<h2>Tables</h2>")
    for title, df in tables.items():
        if title == FINDINGS or isinstance(df, str):
            continue
        note = df.attrs.get("note")
        first = title == "Label shares per model"
        body.append(f"<h3>{_esc(title)}</h3>" + _table(df, [k for k in constant if not (first and k == "model_key")]))
        if note:
            body.append(f"<p class='note'>{_esc(note)}</p>")
    if len(corrected):
        body.append("<h3>Judge-corrected refusal rates (Beta-posterior error rates in the bootstrap)</h3>"
                    + _table(corrected, text_columns=("warning", "note")))
    extra = {"ppi": any(t.startswith("Prediction-powered") for t in tables), "validated": bool(instrument_tables),
             "corrected": bool(len(corrected))}
    if len(shown):
        body.append("<h2>Outputs behind the findings</h2><p class='note'>The outputs of the groups each finding "
                    f"compares (at most {OUTPUTS_LIMIT} in all, shared between the findings, in a seeded order; "
                    "`qos evidence` shows any group's), with the judge's label and reason and the human label "
                    "where there is one. Type in the box to filter; click a header to sort.</p>"
                    + _table(shown, text_columns=evidence.TEXT, filterable=True))
    body.append("<h2>Method</h2>" + _methods(prov, cells, extra))
    body.append("<h2>Provenance</h2><dl class='prov'>" + "".join(
        f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in
        {"build_id": prov["build_id"], "built_at": prov["built_at"], "warehouse": db.name}.items()) + "</dl>")
    body.append("<h3>Model cells (version, prompt format, generation config hash, design, judge)</h3>"
                + _table(cells))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>qos report {_esc(prov['build_id'])}</title><style>{page.CSS}</style></head>"
            f"<body><main>{''.join(body)}</main><script>{page.SCRIPT}</script></body></html>\n")


def write_html(db: Path, path: Path, model: str | None = None, judge: str | None = None,
               images: dict[str, bytes] | None = None) -> Path:
    """Write the page to ``path`` (its folder is created); returns the path."""
    page = render_html(db, model, judge, images)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def markdown_summary(db: Path, images: dict[str, bytes], max_rows: int = 40) -> str:
    """Markdown for the ``metric_tables`` asset in the Dagster UI: the findings (cells, then pairs of models),
    the primary family's gaps vs the reference group with their templates x names intervals and adjusted
    p-values, and the pictures as ``data:`` URIs."""
    with connect_readonly(db) as con:
        found = findings(con)
        pairs = model_comparison_lines(con)
        gaps = con.execute(f"SELECT * FROM group_comparisons WHERE family = '{PRIMARY}' ORDER BY ALL").df()
        reference = plots.reference_group(con)
        ppi = instrument.ppi_gaps(con)
        agreement, errors = instrument.agreement(con)
        proof = [ev for f in found for ev in evidence.for_finding(con, f)]
        verdict = gate.evaluate(con)
    lines = ["### Findings", *[f"- {f.sentence}" for f in found], *[f"- {line}" for line in pairs], ""]
    if verdict.families:
        lines += ["### Checkpoints", *[f"- {gate.family_line(f)}" for f in verdict.families], ""]
    if proof:
        lines += ["### The evidence behind the gaps", ""] + [line for ev in proof for line in evidence.to_markdown(ev)]
    if len(agreement):
        lines += ["### The judge against human labels (95% template-cluster CI)", "",
                  "| judge | labelled outputs of | n | kappa | accuracy | refusal F1 |", "|---|---|---:|---|---|---|"]
        lines += [f"| {r['judge_id']} | {r['labelled outputs of']} | {r['n']} | {r['kappa [95% CI]']} | "
                  f"{r['accuracy [95% CI]']} | {r['refusal F1 [95% CI]']} |"
                  for _, r in instrument.agreement_table(agreement).iterrows()]
        flagged = errors[errors["flagged"]]
        lines += ["", f"Flagged for group bias: {len(flagged)} (measure, group) pairs"
                  + "".join(f"; {r.measure} {r.name_group} ({r.judge_id})" for r in flagged.itertuples()), ""]
    if len(ppi):
        primary = ppi[ppi["family"] == "primary"].sort_values("diff", ascending=False)
        lines += [f"### Prediction-powered any-refusal gap vs {reference} (template x name 95% CI)", "",
                  "| model | judge | group | labelled | judge alone | corrected gap | p_adj |",
                  "|---|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r.model_key} | {r.judge_id} | {r.name_group} | {r.n_labelled} + {r.n_labelled_vs} | "
                  f"{100 * r.judge_diff:+.1f} | {100 * r.diff:+.1f} {_ci(r.diff_ci_tn_low, r.diff_ci_tn_high)} | "
                  f"{fmt_p(r.p_adjusted)} |" for r in cast(Iterable[Any], primary.itertuples())]
        lines.append("")
    if len(gaps):
        labels = {tuple(f.cell.values()): f.label for f in found}
        gaps["cell"] = [labels.get(tuple(r), r[0]) for r in gaps[CELL_KEYS].itertuples(index=False, name=None)]
        gaps = gaps.sort_values(["cell", "diff"], ascending=[True, False]).head(max_rows)
        measure = str(gaps["measure"].iloc[0]).replace("_", "-")
        lines += [f"### Primary family: {measure} gap vs {reference} (95% CI resampling templates x names)", "",
                  "| model | group | n | rate | ref | gap, pts [95% CI] | names fixed | p_adj |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r.cell} | {r.name_group} | {int(r.n)} | {100 * r.rate:.1f}% | {100 * r.rate_vs:.1f}% | "
                  f"{100 * r.diff:+.1f} {_ci(r.diff_ci_tn_low, r.diff_ci_tn_high)} | "
                  f"{_ci(r.diff_ci_low, r.diff_ci_high)} | {fmt_p(r.p_adjusted)} |" for r in gaps.itertuples()]
        lines.append("")
    for name in PICTURES:
        if name in images:
            lines += [f"**{CAPTIONS[name]}**", "", f"![{name}]({data_uri(images[name])})", ""]
    return "\n".join(lines)
