"""A statistics table added the way the house says: one declaration and one function in a module of its own
(here a temporary one, outside the package), with nothing else edited. Its DDL, comments, row count, key
check and staleness must all follow from the declaration."""

from __future__ import annotations

import importlib
import sys
import textwrap

import duckdb
import pytest

from qos_pipeline import tables
from qos_pipeline.checks import BlockedError
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.step import code_version, rebuild_warehouse
from qos_pipeline.tables.checks import METRIC_TABLES_KEYS_UNIQUE
from tests.metrics.test_build import _stage_judged

MODULE = "qos_extra_statistic"
SOURCE = '''
"""An extra statistic: outputs per group and cell."""
from qos_pipeline.tables import CELL_KEYS, Table, columns, declare


def outputs_per_group(ctx):
    """Outputs of each group in each cell (REPEAT: every row twice, to break the key)."""
    frame = ctx.con.execute("SELECT model_key, model_version, prompt_format, gen_config_hash, design, judge_id, "
                            "name_group, count(*)::INTEGER AS outputs FROM judged GROUP BY ALL").df()
    return frame if not REPEAT else frame.loc[frame.index.repeat(2)]


REPEAT = {repeat}
declare(Table("outputs_per_group", kind="statistic", bootstrap=False,
              grain="Grain: cell x name_group. Outputs of the group in the cell.",
              columns=columns("model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, "
                              "prompt_format VARCHAR NOT NULL, gen_config_hash VARCHAR NOT NULL, "
                              "design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, name_group VARCHAR NOT NULL, "
                              "outputs INTEGER NOT NULL", outputs="Outputs of name_group in the cell."),
              key=(*CELL_KEYS, "name_group"), producer=outputs_per_group))
'''


@pytest.fixture
def extra_module(tmp_path, monkeypatch):
    """Write the module, import it (which declares the table); forget both afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(repeat: bool = False):
        (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE.format(repeat=repeat)))
        tables.forget("outputs_per_group")
        sys.modules.pop(MODULE, None)
        importlib.invalidate_caches()
        return importlib.import_module(MODULE)

    yield write
    tables.forget("outputs_per_group")
    sys.modules.pop(MODULE, None)


def _stage(root):
    for group in ("white", "muslim"):
        _stage_judged(root / "staging", group=group, labels=("answer", "refusal"))
    return root / "staging"


def test_one_declaration_and_one_function_make_a_checked_commented_table(tmp_path, extra_module):
    before = code_version()
    extra_module()
    assert code_version() != before  # the producer's module is part of what marks the tables stale
    staging, db = _stage(tmp_path), tmp_path / "qos.duckdb"
    counts, outcomes = rebuild_warehouse(staging, db, "white", StatsSettings(resamples=0))
    assert counts["outputs_per_group"] == 2  # row count reported with every metric table

    with duckdb.connect(str(db), read_only=True) as con:
        cols = con.execute("SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() "
                           "WHERE table_name = 'outputs_per_group' ORDER BY column_index").fetchall()
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'outputs_per_group'").fetchone()
        rows = con.execute("SELECT name_group, outputs, build_id IS NOT NULL FROM outputs_per_group "
                           "ORDER BY ALL").fetchall()
    by_name = {c[0]: c[1:] for c in cols}
    assert by_name["outputs"] == ("INTEGER", False, "Outputs of name_group in the cell.")  # DDL + own note
    assert by_name["model_key"][2] == tables.note_of("group_comparisons", "model_key")  # the shared note
    assert set(by_name) == {*tables.CELL_KEYS, "name_group", "outputs", "build_id", "built_at"}
    assert comment == ("Grain: cell x name_group. Outputs of the group in the cell.",)
    assert rows == [("muslim", 2, True), ("white", 2, True)]
    keys = next(o for o in outcomes if o.name == METRIC_TABLES_KEYS_UNIQUE)
    assert keys.passed and keys.blocking


def test_a_repeated_key_in_the_new_table_blocks_the_build_naming_it(tmp_path, extra_module):
    extra_module(repeat=True)
    staging, db = _stage(tmp_path), tmp_path / "qos.duckdb"
    with pytest.raises(BlockedError, match=f"{METRIC_TABLES_KEYS_UNIQUE}.*outputs_per_group"):
        rebuild_warehouse(staging, db, "white", StatsSettings(resamples=0))
    assert not db.exists()  # nothing published


def test_editing_the_statistic_marks_the_tables_stale(tmp_path, extra_module):
    extra_module()
    first = code_version()
    extra_module(repeat=True)
    assert code_version() != first


def test_bad_declarations_are_refused_by_name():
    with pytest.raises(ValueError, match="'nonsense INT' is not 'name TYPE"):
        tables.columns("nonsense INT")
    with pytest.raises(ValueError, match="statistic table 'x' has no producer"):
        tables.declare(tables.Table("x", grain="g", kind="statistic", columns=tables.columns("name_group VARCHAR")))
    with pytest.raises(ValueError, match=r"column\(s\) \['mystery'\] have no note"):
        tables.declare(tables.Table("x", grain="g", kind="staged", columns=tables.columns("mystery VARCHAR")))
    with pytest.raises(ValueError, match="table 'group_comparisons' is declared twice"):
        tables.declare(tables.Table("group_comparisons", grain="other", kind="sql"))
