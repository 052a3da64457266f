"""The pictures: valid PNG files in the warehouse folder's plots/, one per view the data supports."""

from __future__ import annotations

import struct

import duckdb

from qos_pipeline.metrics.plots import plot_data, write_plots
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
