"""Chunked ingest: a file read a chunk at a time gives exactly the rows and checks of the file read whole, and
what needs the whole file (sample numbers, repeated rows, repeated keys) is still seen across chunks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qos_pipeline.generation.models.added import RecordedSource
from qos_pipeline.ingest.partitions import spool, to_partitions
from qos_pipeline.ingest.reading import IngestError, iter_table, read_table
from qos_pipeline.ingest.recorded import iter_recorded, load_recorded
from tests.paths import ASSETS

NAMES = ["Mohammed", "John", "Fatima", "Emily"]


def _rows(prompts: int = 5, samples: int = 3, sample_column: bool = False) -> list[dict]:
    """Samples of one prompt spread over the file (prompt-major would keep them in one chunk)."""
    rows = []
    for s in range(samples):
        for p in range(prompts):
            row = {"prompt": f"{NAMES[p % 4]} asked about topic {p} for [BLANK]",
                   "response": f"answer {s} to {p}", "label": "answer" if (p + s) % 3 else "refusal"}
            rows.append({**row, "sample": s} if sample_column else row)
    return rows


def _jsonl(tmp_path, rows, name="outs.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_no_chunk_is_larger_than_asked(tmp_path, suffix):
    rows = _rows(prompts=7, samples=2)
    path = tmp_path / f"outs.{suffix}"
    if suffix == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path = _jsonl(tmp_path, rows)
    chunks = list(iter_table(path, chunk_rows=4))
    assert [len(c) for c in chunks] == [4, 4, 4, 2]
    assert pd.concat(chunks)["response"].tolist() == [r["response"] for r in rows]


def test_chunks_give_the_rows_of_one_read(tmp_path):
    """Sample numbers run on across chunks: the third sample of a prompt is 2 whichever chunk it falls in."""
    path = _jsonl(tmp_path, _rows())
    whole = load_recorded(path, ASSETS, frame=read_table(path))  # converted as one frame
    chunked = pd.concat(iter_recorded(path, ASSETS, chunk_rows=4), ignore_index=True)
    pd.testing.assert_frame_equal(chunked, whole, check_like=True)
    assert sorted(chunked.groupby("prompt_text")["sample"].apply(list).tolist()) == [[0, 1, 2]] * 5


def test_a_row_repeated_in_a_later_chunk_is_refused_by_line(tmp_path):
    rows = _rows()
    path = _jsonl(tmp_path, [*rows, rows[1]])  # line 16 repeats line 2, three chunks later
    with pytest.raises(IngestError, match=r"1 rows repeat earlier rows exactly \(line 16 repeats line 2\)"):
        list(iter_recorded(path, ASSETS, chunk_rows=4))


def _source(path, labels=True):
    return RecordedSource("m", path, "recorded", labels)


def test_spooled_groups_hold_the_rows_and_checks_of_the_whole_frame(tmp_path):
    path = _jsonl(tmp_path, _rows())
    spooled = spool(_source(path), "run-1", ASSETS, lambda g: tmp_path / "out" / f"{g}.parquet", chunk_rows=4)
    whole = to_partitions(load_recorded(path, ASSETS), path, "m", "recorded", "run-1", True)
    assert set(spooled) == set(whole) == {"muslim", "white"}
    for group, (frame, outcomes) in whole.items():
        read = pd.read_parquet(spooled[group].file)
        keep = [c for c in frame.columns if c != "created_at"]
        pd.testing.assert_frame_equal(read.sort_values("generation_id")[keep].reset_index(drop=True),
                                      frame.sort_values("generation_id")[keep].reset_index(drop=True),
                                      check_dtype=False)
        assert [(o.name, o.passed) for o in spooled[group].outcomes()] == [(o.name, o.passed) for o in outcomes]
        assert spooled[group].rows == len(frame)


def test_a_key_repeated_in_another_chunk_fails_completeness(tmp_path):
    """With a sample column, (prompt, sample 0) twice with different responses, in chunks 1 and 4: each
    chunk alone is fine, the partition is not."""
    rows = _rows(sample_column=True)
    rows.append({**rows[0], "response": "another answer"})
    path = _jsonl(tmp_path, rows)
    spooled = spool(_source(path, labels=False), "r", ASSETS, lambda g: tmp_path / f"{g}.parquet", chunk_rows=4)
    outcomes = {o.name: o for o in spooled["muslim"].outcomes()}
    assert outcomes["generations_schema"].passed  # chunk by chunk
    assert not outcomes["generations_complete"].passed and outcomes["generations_complete"].metadata["duplicated"] == 1
    assert all(o.passed for o in spooled["white"].outcomes())


def test_a_bad_row_in_a_late_chunk_leaves_no_spooled_file(tmp_path):
    rows = _rows()
    rows[-1] = {**rows[-1], "label": "maybe"}
    path = _jsonl(tmp_path, rows)
    with pytest.raises(IngestError, match=r"row 16: .*'maybe'"):
        spool(_source(path), "r", ASSETS, lambda g: tmp_path / "out" / f"{g}.parquet", chunk_rows=4)
    assert list((tmp_path / "out").glob("*")) == []
