"""An ingest is published whole or not at all: while a key's ingest is uncommitted, builds load the key's
previous staged files; the commit makes the new ones loaded at once; a drop puts the old ones back; every
step can be interrupted and redone."""

from __future__ import annotations

import json

import pytest

from qos_pipeline import journal
from qos_pipeline.staging import staged_files
from tests.metrics.test_build import _stage_judged


def _groups(staging, table="generations"):
    return sorted(keys["group"] for _, keys in staged_files(staging, table) if keys["model"] == "k")


def test_an_uncommitted_ingest_keeps_the_previous_rows_loaded_until_its_commit(tmp_path):
    staging = tmp_path / "staging"
    for group in ("white", "muslim"):
        _stage_judged(staging, model="k", group=group)
    _stage_judged(staging, model="other", group="white")
    journal.begin(staging, "k", {"file": "/data/b.jsonl", "resume": "qos ingest /data/b.jsonl --model k"})
    assert _groups(staging) == ["muslim", "white"]  # the previous rows, from their place aside
    assert all(".pending" in str(p) for p, keys in staged_files(staging, "judgments") if keys["model"] == "k")
    assert not (staging / "generations" / "model=k").exists()
    _stage_judged(staging, model="k", group="asian")  # what the new ingest has written so far
    assert _groups(staging) == ["muslim", "white"] and _groups(staging, "judgments") == ["muslim", "white"]
    assert [k["group"] for _, k in staged_files(staging, "generations") if k["model"] == "other"] == ["white"]
    journal.commit(staging, "k")
    assert _groups(staging) == ["asian"] and _groups(staging, "judgments") == ["asian"]
    assert not (staging / journal.PENDING / "k").exists()


def test_a_drop_puts_the_previous_rows_back_and_a_new_key_has_none_while_pending(tmp_path):
    staging = tmp_path / "staging"
    _stage_judged(staging, model="k", group="white")
    before = {p.relative_to(staging): p.read_bytes() for p in staging.rglob("*.parquet")}
    journal.begin(staging, "k", {"file": "b", "previous": {"recorded": "a"}})
    _stage_judged(staging, model="k", group="asian")
    info = journal.drop(staging, "k")
    assert info["previous"] == {"recorded": "a"}
    assert {p.relative_to(staging): p.read_bytes() for p in staging.rglob("*.parquet")} == before
    journal.begin(staging, "new", {"file": "b"})
    _stage_judged(staging, model="new", group="asian")
    assert [k for _, k in staged_files(staging, "generations") if k["model"] == "new"] == []


def test_an_ingest_killed_while_moving_the_old_rows_aside_loses_none_and_resumes(tmp_path):
    staging = tmp_path / "staging"
    _stage_judged(staging, model="k", group="white")
    item = journal.begin(staging, "k", {"file": "b"})
    # as if killed after moving generations but before judgments: put judgments back, state "moving"
    (staging / "judgments").mkdir(exist_ok=True)
    (item.old / "judgments" / "model=k").rename(staging / "judgments" / "model=k")
    info = json.loads((item.folder / journal.JOURNAL).read_text())
    (item.folder / journal.JOURNAL).write_text(json.dumps({**info, "state": "moving"}))
    assert _groups(staging) == ["white"] and _groups(staging, "judgments") == ["white"]  # both old, none lost
    journal.begin(staging, "k", {})  # the resumed ingest finishes the move
    assert not (staging / "judgments" / "model=k").exists() and _groups(staging, "judgments") == ["white"]
    assert journal.pending(staging)["k"].info["file"] == "b"


@pytest.mark.parametrize("state", ["running", "dropping"])
def test_a_drop_interrupted_half_way_is_finished_by_the_next_begin_or_drop(tmp_path, state):
    staging = tmp_path / "staging"
    _stage_judged(staging, model="k", group="white")
    item = journal.begin(staging, "k", {"file": "b", "previous": None})
    _stage_judged(staging, model="k", group="asian")
    if state == "dropping":  # killed after restoring generations only
        import shutil

        shutil.rmtree(staging / "generations" / "model=k")
        (item.old / "generations" / "model=k").rename(staging / "generations" / "model=k")
        info = json.loads((item.folder / journal.JOURNAL).read_text())
        (item.folder / journal.JOURNAL).write_text(json.dumps({**info, "state": "dropping"}))
    assert _groups(staging) == ["white"] and _groups(staging, "judgments") == ["white"]
    journal.drop(staging, "k")
    assert _groups(staging) == ["white"] and _groups(staging, "judgments") == ["white"]
    assert journal.pending(staging) == {}
