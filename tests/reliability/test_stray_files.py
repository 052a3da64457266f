"""The loader reads exactly the staged partitions: copies, backups and misplaced files are refused by name,
a file of another schema is named, and a repeated key stops the build before anything is published."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from qos_pipeline.metrics.step import rebuild_warehouse
from qos_pipeline.staging import WarehouseError, partition_file, staged_files
from tests.metrics.test_build import _stage_judged
from tests.reliability.warehouses import STATS, copy_of, publish


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A published warehouse of model m (white, muslim), built once."""
    return publish(tmp_path_factory.mktemp("published"), ("white", "muslim"))


@pytest.fixture()
def built(published, tmp_path):
    """A copy of the published warehouse; returns (staging, db, bytes of the db)."""
    staging, db = copy_of(published, tmp_path)
    return staging, db, db.read_bytes()


def _refused(staging, db, before, match):
    with pytest.raises(WarehouseError, match=match):
        rebuild_warehouse(staging, db, "white", STATS)
    assert db.read_bytes() == before  # nothing published


@pytest.mark.parametrize("table", ["prompts", "generations"])
def test_a_copy_beside_a_partition_is_refused_by_path(built, table):
    # the copy of white's partition used to be loaded as more rows: white's n doubled, every check passed
    staging, db, before = built
    data = partition_file(staging, table, "white", None if table == "prompts" else "m")
    if not data.exists():  # _stage_judged stages no prompts: stage white's
        from qos_pipeline.prompts.design import load_design
        from qos_pipeline.prompts.step import build_prompts
        from qos_pipeline.staging import write_partition
        from tests.paths import ASSETS

        write_partition(build_prompts(load_design("demo", ASSETS), "white", "r")[0], data)
    shutil.copy(data, data.with_name("data-copy.parquet"))
    _refused(staging, db, before, r"unexpected file .*group=white/data-copy\.parquet.*move it out")


@pytest.mark.parametrize("name", ["data (1).parquet", "data.parquet.bak", "notes.txt"])
def test_backups_and_stray_files_are_refused(built, name):
    staging, db, before = built
    data = partition_file(staging, "generations", "white", "m")
    shutil.copy(data, data.parent / name)
    _refused(staging, db, before, "unexpected file .*" + name.replace("(", r"\(").replace(")", r"\)").replace(".", r"\."))


def test_a_copy_of_a_judge_file_under_another_name_is_refused(built):
    staging, db, before = built
    judged = partition_file(staging, "judgments", "white", "m", "judge-a")
    shutil.copy(judged, judged.with_name("judge-a-backup.parquet"))
    _refused(staging, db, before, r"judge-a-backup\.parquet holds rows with judge_id='judge-a'.*copied or moved")


def test_a_partition_copied_into_another_groups_place_is_refused(built):
    staging, db, before = built
    target = partition_file(staging, "generations", "black", "m")
    target.parent.mkdir(parents=True)
    shutil.copy(partition_file(staging, "generations", "white", "m"), target)
    _refused(staging, db, before, r"group=black/data\.parquet holds rows with name_group='white'")


def test_a_repeated_key_stops_the_build_naming_both_files(built):
    # the judge file of white copied into black's folder: its place (model m, judge-a) is right, its rows repeat
    staging, db, before = built
    target = partition_file(staging, "judgments", "black", "m", "judge-a")
    target.parent.mkdir(parents=True)
    shutil.copy(partition_file(staging, "judgments", "white", "m", "judge-a"), target)
    _refused(staging, db, before, r"judgments: key \(generation_id, judge_id\) is not unique.*x2 in "
                                  r".*group=black/judge-a\.parquet, .*group=white/judge-a\.parquet")


def test_a_file_of_another_schema_is_named(built):
    staging, db, before = built
    gens = partition_file(staging, "generations", "white", "m")
    pd.read_parquet(gens).assign(sample=["abc", "def"]).to_parquet(gens)  # same columns, wrong type
    _refused(staging, db, before, r"staged file .*model=m/group=white/data\.parquet cannot be loaded")
    _stage_judged(staging, group="white")
    pd.read_parquet(gens).assign(shoe_size=1).to_parquet(gens)  # a column the table does not have
    _refused(staging, db, before, r"staged file .*model=m/group=white/data\.parquet cannot be loaded.*shoe_size")


def test_a_prompts_file_staged_as_generations_is_named(built):
    staging, db, before = built
    from qos_pipeline.prompts.design import load_design
    from qos_pipeline.prompts.step import build_prompts
    from tests.paths import ASSETS

    prompts, _ = build_prompts(load_design("demo", ASSETS), "white", "r")
    prompts.to_parquet(partition_file(staging, "generations", "white", "m"))
    _refused(staging, db, before, r"group=white/data\.parquet lacks column\(s\) \['finish_reason'")


def test_files_of_a_write_in_flight_are_skipped_and_the_partitions_listed(built):
    staging, db, _ = built
    data = partition_file(staging, "generations", "white", "m")
    (data.parent / ".data.parquet.0123abcd.tmp").write_bytes(b"half written")
    listed = staged_files(staging, "generations")
    assert [keys for _, keys in listed] == [{"model": "m", "group": "muslim"}, {"model": "m", "group": "white"}]
    assert staged_files(staging, "prompts") == []  # no folder yet: nothing, not an error
