"""benchmarks/ingest_scale.py's synthetic file: the size asked for, every group's names, and rows that the
real ingest accepts and checks as complete (the benchmark would otherwise time an error)."""

from __future__ import annotations

from qos_pipeline.generation.models.added import RecordedSource
from qos_pipeline.ingest.partitions import spool
from tests.paths import ASSETS, load_script


def test_the_synthetic_file_is_what_the_benchmark_claims(tmp_path):
    bench = load_script("benchmarks/ingest_scale.py")
    path = tmp_path / "recorded.csv"
    written = bench.write_file(path, 1_000)
    assert written == 56 * 5 * 4  # 56 names x 5 samples x round(1000 / 280) templates
    spooled = spool(RecordedSource("bench", path, "recorded"), "r", ASSETS, lambda g: tmp_path / f"{g}.parquet",
                    chunk_rows=300)
    assert sum(s.rows for s in spooled.values()) == written and len(spooled) == 7
    assert all(o.passed for s in spooled.values() for o in s.outcomes() if o.blocking)
