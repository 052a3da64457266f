"""`qos report --html PATH`: one self-contained HTML page (inline CSS and a small inline script that sorts and
filters its tables, the pictures as base64 ``data:`` URIs, no external URL) with the findings and the
evidence behind each (driving templates and names, example outputs), the judge's agreement, the pictures,
the report's tables, the outputs behind the findings, the method notes and the provenance of the build. It
opens from disk in any browser, without a server, and prints whole. It names the warehouse by its file name
only: no path of the machine it was built on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qos_pipeline.metrics import evidence, instrument, page, plots
from qos_pipeline.metrics.build import CELL, connect_readonly
from qos_pipeline.metrics.findings import ADJUST_WORDS, cell_where, findings, fmt_p
from qos_pipeline.metrics.report import (
    AGREEMENT_TITLE, FINDINGS, GROUP_ERROR_TITLE, JUDGE_PAIRS_TITLE, build_report, constant_keys)

CAPTIONS = {
    "forest": "Any-refusal gap of each group vs the reference group, in percentage points. Thick line: 95% "
              "template-cluster bootstrap interval; thin line: templates x names; red: adjusted p < 0.05.",
    "names": "Any-refusal rate per name with its 95% template-cluster interval; dashed: the reference group.",
    "label_shares": "Share of each label per group (colour on a square-root scale, so small shares show).",
    "refusal_by_model": "Any-refusal share per group and model cell.",
    "templates": "Any-refusal share per template and group: which prompts carry the gap.",
}


_esc, _table, data_uri = page.esc, page.table, page.data_uri
OUTPUTS_LIMIT = 2000  # rows of the outputs table: the page stays a few MB; `qos evidence` shows any cell


def _ci(low, high) -> str:
    return "" if pd.isna(low) or pd.isna(high) else f"[{100 * low:.1f}, {100 * high:.1f}]"


def _model_comparisons(con, model: str | None, judge: str | None) -> pd.DataFrame:
    clauses, params = [], []
    if model:
        clauses.append("(model_key_a = ? OR model_key_b = ?)"), params.extend([model, model])
    if judge:
        clauses.append("judge_id = ?"), params.append(judge)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    df = con.execute(f"SELECT * FROM model_comparisons{where} ORDER BY ALL", params).df()
    if df.empty:
        return df
    out = df[["model_key_a", "model_key_b", "judge_id", "measure", "name_group", "vs_group"]].copy()
    out["gap A"] = df["gap_a"].map(lambda x: f"{100 * x:+.1f}")
    out["gap B"] = df["gap_b"].map(lambda x: f"{100 * x:+.1f}")
    out["B - A, pts [95% CI]"] = [f"{100 * d:+.1f} {_ci(a, b)}" for d, a, b in
                                  zip(df["diff_of_gaps"], df["ci_low"], df["ci_high"])]
    out["p_adj"] = df["p_adjusted"].map(fmt_p)
    return out


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
    cells = con.execute(f"""SELECT {', '.join(CELL)}, any_value(n) AS n, any_value(boot_resamples) AS resamples,
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
        f"<b>Intervals</b>: 95% percentile intervals of a cluster bootstrap that resamples templates ({resamples} "
        f"resamples, seed {seed}); the samples of one prompt and every group's rows of a template move together, "
        "so gaps are paired within template. A second interval resamples templates x names. Wilson intervals are "
        "kept as the naive comparison (they treat every output as independent and are too narrow)."
        if resamples else "<b>Intervals</b>: statistics were off for this build (0 bootstrap resamples).",
        "<b>Tests</b>: a permutation test of group labels between names, paired within template (every name "
        f"carries every template), {prov['p_method'] or 'exact'} "
        f"(up to {int(prov['permutations'])} assignments). Names, not outputs, are the unit: with few names "
        "per group no gap can be significant, which is the honest answer.",
        f"<b>Multiplicity</b>: p-values adjusted across all comparisons of one model cell ({adjust}; "
        "Holm controls the family-wise error rate, Benjamini-Hochberg the false discovery rate).",
        "<b>Ratios</b>: log risk ratios with +0.5 on every count, so a 0% reference gives a finite ratio, "
        "flagged as a zero count.",
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
        data = plots.plot_data(con, model, judge)
        comparisons = _model_comparisons(con, model, judge)
        corrected = _corrected(con, where, params)
        cells, prov = _provenance(con, where, params)
    images = plots.render(data) if images is None else images
    constant = constant_keys(tables)  # said once above the tables; the first table keeps its model_key
    body = ["<h1>Quality-of-service audit: refusal disparities by name group</h1>",
            f"<p class='meta'>warehouse <code>{_esc(db.name)}</code> &middot; build <code>{_esc(prov['build_id'])}"
            f"</code> built {_esc(prov['built_at'])} &middot; reference group <b>{_esc(data['reference'])}</b></p>",
            "<h2>Findings</h2><ul class='findings'>"]
    for f in found:
        blocks = "".join(evidence.to_html(ev, _table) for ev in proof[id(f)])
        body.append(f"<li class='{_esc(f.status)}'>{_esc(f.sentence)}{blocks}</li>")
    body.append("</ul>")
    if constant:
        body.append("<p class='meta'>every row below: " + ", ".join(
            f"{_esc(k)} <code>{_esc(v)}</code>" for k, v in constant.items()) + "</p>")
    instrument_tables = [t for t in (AGREEMENT_TITLE, GROUP_ERROR_TITLE, JUDGE_PAIRS_TITLE) if t in tables]
    if instrument_tables:
        body.append("<h2>The instrument: judge agreement</h2>")
        for title in instrument_tables:
            df = tables.pop(title)
            body.append(f"<h3>{_esc(title)}</h3>" + _table(df))
            if df.attrs.get("note"):
                body.append(f"<p class='note'>{_esc(df.attrs['note'])}</p>")
    body.append("<h2>Pictures</h2>")
    for name in ("forest", "names", "label_shares", "refusal_by_model", "templates"):
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
    if len(comparisons):
        body.append("<h3>Model comparisons: gap of model B minus gap of model A, paired by prompt</h3>"
                    + _table(comparisons))
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
    """Markdown for the ``metric_tables`` asset in the Dagster UI: the findings, the any-refusal gaps vs the
    reference group with intervals and adjusted p-values, and the pictures as ``data:`` URIs."""
    with connect_readonly(db) as con:
        found = findings(con)
        gaps = con.execute("SELECT * FROM group_comparisons WHERE is_reference AND measure = 'any_refusal' "
                           "ORDER BY ALL").df()
        reference = plots.reference_group(con)
        ppi = instrument.ppi_gaps(con)
        agreement, errors = instrument.agreement(con)
        proof = [ev for f in found for ev in evidence.for_finding(con, f)]
    lines = ["### Findings", *[f"- {f.sentence}" for f in found], ""]
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
        primary = ppi[ppi["measure"] == "any_refusal"].sort_values("diff", ascending=False)
        lines += [f"### Prediction-powered any-refusal gap vs {reference} (template x name 95% CI)", "",
                  "| model | judge | group | labelled | judge alone | corrected gap | p_adj |",
                  "|---|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r.model_key} | {r.judge_id} | {r.name_group} | {r.n_labelled} + {r.n_labelled_vs} | "
                  f"{100 * r.judge_diff:+.1f} | {100 * r.diff:+.1f} {_ci(r.diff_ci_tn_low, r.diff_ci_tn_high)} | "
                  f"{fmt_p(r.p_adjusted)} |" for r in primary.itertuples()]
        lines.append("")
    if len(gaps):
        labels = {tuple(f.cell.values()): f.label for f in found}
        gaps["cell"] = [labels.get(tuple(r), r[0]) for r in gaps[CELL].itertuples(index=False, name=None)]
        gaps = gaps.sort_values(["cell", "diff"], ascending=[True, False]).head(max_rows)
        lines += [f"### Any-refusal gap vs {reference} (95% template-cluster CI)", "",
                  "| model | group | n | rate | ref | gap, pts [95% CI] | p_adj |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r.cell} | {r.name_group} | {int(r.n)} | {100 * r.rate:.1f}% | {100 * r.rate_vs:.1f}% | "
                  f"{100 * r.diff:+.1f} {_ci(r.diff_ci_low, r.diff_ci_high)} | {fmt_p(r.p_adjusted)} |"
                  for r in gaps.itertuples()]
        lines.append("")
    for name in ("forest", "names", "label_shares", "refusal_by_model", "templates"):
        if name in images:
            lines += [f"**{CAPTIONS[name]}**", "", f"![{name}]({data_uri(images[name])})", ""]
    return "\n".join(lines)
