"""A stale WAL beside qos.duckdb never keeps the warehouse unreadable after a build, and files left by
killed builds are removed by the next one."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from qos_pipeline.checks import BlockedError
from qos_pipeline.metrics import publish as publishing
from qos_pipeline.metrics.step import rebuild_warehouse
from qos_pipeline.staging import WarehouseError, partition_file, write_partition
from tests.metrics.test_build import _stage_judged
from tests.reliability.warehouses import STATS, copy_of, publish


def _plant_foreign_wal(db):
    """A WAL of another database beside ``db`` (what a crashed writer or an old publish leaves): DuckDB
    refuses to open ``db`` while it is there."""
    (db.parent / "other").mkdir(exist_ok=True)
    other = db.parent / "other" / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("SET wal_autocheckpoint = '1TB'")
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    shutil.copy(str(other) + ".wal", str(db) + ".wal")
    con.close()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return publish(tmp_path_factory.mktemp("published"), ("white",))


@pytest.fixture()
def wh(published, tmp_path):
    return copy_of(published, tmp_path)


def test_a_rebuild_leaves_no_stale_wal_nor_killed_builds_and_a_readable_database(wh, tmp_path):
    staging, db = wh
    _plant_foreign_wal(db)
    with pytest.raises(WarehouseError, match="qos rebuild"):
        publishing.connect_readonly(db)
    dead = db.with_name(f".{db.name}.999999999.0badc0de.building")  # a killed build's file: no such pid
    dead.write_bytes(db.read_bytes())
    dead.with_name(dead.name + ".wal").write_bytes(b"x")
    live = db.with_name(f".{db.name}.1.0badc0de.building")  # pid 1 is alive: a build in flight, kept
    live.write_bytes(b"x")
    rebuild_warehouse(staging, db, "white", STATS)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith((".building", ".wal"))) == [live.name]
    with publishing.connect_readonly(db) as con:
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 2


def test_publish_removes_the_wal_of_the_file_it_replaces(wh, tmp_path):
    staging, db = wh
    built = publishing.temp_build_path(db)
    shutil.copy(db, built)
    _plant_foreign_wal(db)
    publishing.publish(built, db)
    assert sorted(p.name for p in tmp_path.iterdir() if "qos.duckdb" in p.name) == ["qos.duckdb"]
    with publishing.connect_readonly(db) as con:
        assert con.execute("SELECT count(*) FROM judgments").fetchone()[0] == 2


def test_a_blocked_rebuild_still_leaves_the_old_database_readable(wh):
    staging, db = wh
    _plant_foreign_wal(db)
    _stage_judged(staging, group="muslim")  # a judge covering only muslim blocks the build (groups present)
    judged = partition_file(staging, "judgments", "muslim", "m", "judge-a")
    write_partition(pd.read_parquet(judged).assign(judge_id="other"),
                    partition_file(staging, "judgments", "muslim", "m", "other"))
    with pytest.raises(BlockedError):
        rebuild_warehouse(staging, db, "white", STATS)
    with publishing.connect_readonly(db) as con:  # the previous build, open again
        assert con.execute("SELECT count(*) FROM generations").fetchone()[0] == 2
