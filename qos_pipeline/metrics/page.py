"""Building blocks of the self-contained HTML report: its style (screen and print), a small inline script
that makes every data table sortable (click a header) and filterable (type in the box above it) in place,
escaping, pictures as ``data:`` URIs, and tables. No external URL, no server: the page is one file that
can be mailed, archived and printed."""

from __future__ import annotations

import base64
import html

import pandas as pd

CSS = """
body { font: 15px/1.5 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222; margin: 0;
       background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { font-size: 20px; margin-top: 36px; border-bottom: 2px solid #eee; }
h3 { font-size: 15px; margin: 22px 0 6px; color: #444; }
.meta { color: #666; font-size: 13px; }
ul.findings { padding-left: 0; list-style: none; }
ul.findings li { padding: 10px 14px; margin: 8px 0; border-left: 5px solid #7f8c8d; background: #fafafa; }
ul.findings li.gaps { border-color: #c0392b; background: #fdf2f1; }
ul.findings li.none { border-color: #27ae60; background: #f1faf4; }
ul.findings li.models { border-color: #2980b9; background: #f0f6fb; }
details.evidence { margin: 6px 0 14px 18px; } details.evidence summary { cursor: pointer; color: #34495e; }
figure { margin: 18px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 4px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e5e5e5; text-align: right; white-space: nowrap;
         vertical-align: top; }
td.text, th.text { text-align: left; white-space: normal; min-width: 200px; max-width: 520px; }
th { background: #f0f2f5; position: sticky; top: 0; cursor: pointer; } tr:hover td { background: #fafcff; }
th[data-sort="asc"]::after { content: " \\25B2"; } th[data-sort="desc"]::after { content: " \\25BC"; }
td:first-child, th:first-child { text-align: left; }
input.filter { margin: 4px 0; padding: 3px 6px; width: 320px; font-size: 13px; }
span.count { color: #666; font-size: 12px; margin-left: 8px; }
.note { color: #666; font-size: 12px; max-width: 1000px; } .scroll { overflow: auto; max-height: 520px; }
code { background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; font-size: 13px; }
dl.prov dt { color: #666; } dl.prov dd { margin: 0; font-family: monospace; }
@media print {
  body { background: #fff; font-size: 11px; } main { max-width: none; padding: 0; }
  .scroll { max-height: none; overflow: visible; } th { position: static; }
  input.filter, span.count { display: none; } tr { break-inside: avoid; } figure { break-inside: avoid; }
  td, th { white-space: normal; }
}
"""

SCRIPT = """
document.querySelectorAll('table.data').forEach(function (table) {
  var body = table.tBodies[0], wrap = table.closest('div.table');
  var rows = Array.prototype.slice.call(body.rows);
  var box = wrap.querySelector('input.filter'), label = wrap.querySelector('span.count');
  function show() {
    var q = box ? box.value.toLowerCase() : '', shown = 0;
    rows.forEach(function (r) {
      var hit = !q || r.textContent.toLowerCase().indexOf(q) >= 0;
      r.style.display = hit ? '' : 'none'; if (hit) { shown++; }
    });
    if (label) { label.textContent = shown + ' of ' + rows.length + ' rows'; }
  }
  function key(r, col) {
    var t = r.cells[col].textContent.trim(), n = parseFloat(t.replace(/[%+,]/g, ''));
    return (isNaN(n) || !/^[-+]?[0-9.]/.test(t)) ? t.toLowerCase() : n;
  }
  if (box) { box.addEventListener('input', show); }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('data-sort') !== 'asc';
      Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute('data-sort'); });
      th.setAttribute('data-sort', asc ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  show();
});
"""


def esc(x) -> str:
    """``x`` as escaped HTML text."""
    return html.escape(str(x))


def data_uri(png: bytes) -> str:
    """A PNG as a data URI for an ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def table(df: pd.DataFrame, drop=(), text_columns=(), filterable: bool = False) -> str:
    """A data table (sortable by its headers); ``text_columns`` wrap (long text, printed whole);
    ``filterable`` adds a filter box above it. Whole numbers print as integers."""
    if df.empty:
        return "<p class='note'>(none)</p>"
    shown = df.drop(columns=[c for c in drop if c in df.columns]).copy()
    for column in shown.columns:  # 288.0 -> 288: counts stored as numbers are whole
        values = shown[column]
        if pd.api.types.is_float_dtype(values) and values.notna().any() and (values.dropna() % 1 == 0).all():
            shown[column] = values.map(lambda v: "" if pd.isna(v) else f"{int(v)}")
    wrap = [c in text_columns for c in shown.columns]
    head = "".join(f"<th class='text'>{esc(c)}</th>" if w else f"<th>{esc(c)}</th>"
                   for c, w in zip(shown.columns, wrap))
    body = "".join("<tr>" + "".join(f"<td class='text'>{esc(v)}</td>" if w else f"<td>{esc(v)}</td>"
                                    for v, w in zip(row, wrap)) + "</tr>"
                   for row in shown.fillna("").itertuples(index=False, name=None))
    box = ("<input class='filter' type='search' placeholder='filter rows (any text)'>"
           "<span class='count'></span>") if filterable else ""
    return (f"<div class='table'>{box}<div class='scroll'><table class='data'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div></div>")
