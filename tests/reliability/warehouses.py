"""A small published warehouse built once per module, and a fresh copy of it per test (the reliability
tests break files on purpose, so each works on its own copy)."""

from __future__ import annotations

import shutil
from pathlib import Path

from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.step import rebuild_warehouse
from tests.metrics.test_build import _stage_judged

STATS = StatsSettings(resamples=0)  # statistics off: these tests are about files, not figures


def publish(root: Path, groups: tuple[str, ...]) -> Path:
    """Stage model m's judged rows for ``groups`` under ``root/staging`` and publish ``root/qos.duckdb``."""
    for group in groups:
        _stage_judged(root / "staging", group=group)
    rebuild_warehouse(root / "staging", root / "qos.duckdb", "white", STATS)
    return root


def copy_of(published: Path, target: Path) -> tuple[Path, Path]:
    """A copy of a published warehouse under ``target``: (staging, db)."""
    shutil.copytree(published / "staging", target / "staging")
    shutil.copy(published / "qos.duckdb", target / "qos.duckdb")
    return target / "staging", target / "qos.duckdb"
