"""The pictures: valid PNG files in the warehouse folder's plots/, one per view the data supports."""

from __future__ import annotations

import struct

import duckdb
import pandas as pd

from qos_pipeline.metrics.plots import MAX_TEMPLATES, plot_data, template_grid, write_plots
from tests.metrics.test_findings import null_db, planted_db

PNG = b"\x89PNG\r\n\x1a\n"


def _size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR" and data.rstrip().endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", data[16:24])


def test_plots_are_valid_pngs_beside_the_warehouse():
    db = planted_db()
    paths = write_plots(db)
    assert set(paths) == {"label_shares", "templates", "forest", "names"}  # one cell: no group x model map
    for name, path in paths.items():
        assert path == db.parent / "plots" / f"{name}.png"
        width, height = _size(path)
        assert 300 < width < 3000 and 150 < height < 3000, (name, width, height)


def test_several_models_add_the_group_x_model_map_and_stale_files_go(tmp_path):
    (tmp_path / "old.png").write_bytes(PNG)
    paths = write_plots(null_db(), tmp_path)
    assert "refusal_by_model" in paths and not (tmp_path / "old.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in paths)
    for path in paths.values():
        _size(path)


def test_plot_data_is_what_the_tables_say():
    with duckdb.connect(str(planted_db()), read_only=True) as con:
        data = plot_data(con)
    assert data["reference"] == "white" and list(data["cells"]["cell"]) == ["m"]
    gaps = data["gaps"].set_index("name_group")
    assert list(gaps.index) == ["muslim"] and abs(gaps.loc["muslim", "diff"] - 0.5) < 1e-9
    templates = data["templates"]
    assert len(templates) == 2 * 32 and set(templates.loc[templates["name_group"] == "white", "rate"]) == {0.0}
    assert len(data["names"]) == 16 and data["names"]["ci_low"].notna().all()


def test_a_large_design_draws_the_templates_that_differ_most():
    """1,000 templates would be a picture tens of thousands of pixels tall (and hundreds of MB to draw): the
    panel keeps the MAX_TEMPLATES templates whose rate differs most between groups, and says so."""
    rows = [{"template_id": f"t{t}", "template_text": f"[NAME] asks about topic {t} [BLANK]", "name_group": g,
             "rate": (0.9 if g == "muslim" else 0.1) if t % 100 == 7 else 0.2 + 0.001 * (t % 3)}
            for t in range(1000) for g in ("white", "muslim")]
    grid, title = template_grid(pd.DataFrame(rows), "m")
    assert len(grid) == MAX_TEMPLATES and f"the {MAX_TEMPLATES} of 1000 templates" in title
    kept = {int(text.split()[-2]) for text in grid.index}
    assert {7, 107, 207, 307, 407, 507, 607, 707, 807, 907} <= kept  # every template with a gap is shown
    small, title = template_grid(pd.DataFrame(rows[:20]), "m")
    assert len(small) == 10 and "of" not in title


def _two_models_db():
    """Models 'low' and 'high' on the same prompts: muslim refused on 1 (low) or 3 (high) of 4 templates,
    asian on 1 of 4 in both; white never."""
    from tests.metrics.test_findings import _build, stage_design

    def stage(staging):
        for model, muslim in (("low", 1), ("high", 3)):
            stage_design(staging, lambda g, n, t, m=muslim: "refusal" if (g == "muslim" and t % 4 < m) or (
                g == "asian" and t % 4 == 0) else "answer", model=model, groups=("asian", "muslim", "white"))
    return _build(stage)


def test_panels_of_several_models_share_one_x_range_row_order_and_colour_scale(monkeypatch):
    from qos_pipeline.metrics import plots

    with duckdb.connect(str(_two_models_db()), read_only=True) as con:
        data = plot_data(con)
    seen = {}

    def capture(fig):
        seen["axes"] = [(ax.get_xlim(), [t.get_text() for t in ax.get_yticklabels()],
                         [im.norm.vmax for im in ax.get_images()]) for ax in fig.axes if ax.get_visible()]
        return b"png"

    monkeypatch.setattr(plots, "_png", capture)
    plt = plots._plt()
    plots.forest(plt, data)
    (x1, rows1, _), (x2, rows2, _) = seen["axes"]
    assert x1 == x2 and rows1 == rows2 == ["asian", "muslim"] and x1[1] > 75  # the +75-point gap of 'high' fits
    plots.templates(plt, data)
    panels = [a for a in seen["axes"] if a[2]]  # the heatmaps (colour bars have no image)
    assert len(panels) == 2 and panels[0][1] == panels[1][1] and panels[0][2] == panels[1][2]
