"""Property-based tests (hypothesis): the template parser, partition keys and the ingest parser hold their
contracts on inputs nobody thought to write down."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from qos_pipeline.ingest.reading import IngestError
from qos_pipeline.ingest.recorded import load_recorded
from qos_pipeline.prompts.design import BLANK, NAME, DesignError, prompt_id, validate_template
from qos_pipeline.provenance import check_key
from qos_pipeline.staging import partition_file, staged_files
from tests.paths import ASSETS

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
WORDS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
PIECES = st.lists(st.one_of(st.sampled_from([NAME, BLANK, "[", "]", "[X]", " "]), WORDS), max_size=8)


@FAST
@given(PIECES)
def test_a_template_is_accepted_exactly_when_it_has_one_name_one_blank_and_no_other_placeholder(pieces):
    text = "".join(pieces)
    valid = (text.count(NAME) == 1 and text.count(BLANK) == 1
             and not re.search(r"\[[^\]]*\]", text.replace(NAME, "").replace(BLANK, "")))
    try:
        validate_template("t", text, "hypothesis")
        accepted = True
    except DesignError as exc:
        accepted = False
        assert "template 't' in hypothesis" in str(exc)
    assert accepted == valid
    if valid:  # rendering it with any name leaves no [NAME], keeps the [BLANK], and the id is the text's
        prompt = text.replace(NAME, "Ana")
        assert NAME not in prompt and BLANK in prompt and re.fullmatch(r"[0-9a-f]{16}", prompt_id(prompt))


@FAST
@given(st.text(max_size=70))
def test_a_key_is_refused_or_safe_in_a_path(value):
    try:
        key = check_key(value, "key")
    except ValueError as exc:
        assert "is not a valid key" in str(exc)
        return
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", key) and key not in (".", "..")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        path = partition_file(staging, "judgments", key, key, key)
        assert path.resolve().is_relative_to(staging.resolve()) and path.parent.parent.parent.parent == staging


KEYS = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)


@FAST
@given(st.lists(st.tuples(KEYS, KEYS, KEYS), min_size=1, max_size=4, unique=True))
def test_every_staged_partition_is_listed_with_the_keys_of_its_place(parts):
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        for model, group, judge in parts:
            path = partition_file(staging, "judgments", group, model, judge)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        listed = [keys for _, keys in staged_files(staging, "judgments")]
    assert sorted(listed, key=lambda k: (k["model"], k["group"], k["judge"])) == \
        sorted(({"model": m, "group": g, "judge": j} for m, g, j in parts), key=lambda k: (k["model"], k["group"], k["judge"]))


NAMES = ["John", "Mohammed", "Emily", "Fatima"]
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(lambda t: t.strip())
ROW = st.fixed_dictionaries({"name": st.sampled_from(NAMES), "response": TEXT, "sample": st.integers(0, 3)})


@settings(FAST, max_examples=25)  # each example reads assets/ again: fewer, still every shape
@given(rows=st.lists(ROW, min_size=1, max_size=8), kind=st.sampled_from(["csv", "jsonl"]))
def test_recorded_rows_read_back_as_written(rows, kind, tmp_path):
    # "r: " first: a bare "NA" or "1" is a missing value or a number in any CSV reader, not this property
    frame = pd.DataFrame([{"prompt": f"{r['name']} went to [BLANK]", "response": "r: " + r["response"],
                           "sample": r["sample"]} for r in rows]).drop_duplicates(["prompt", "sample"])
    path = tmp_path / f"outs.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in frame.to_dict("records")), encoding="utf-8")
    read = load_recorded(path, ASSETS)
    assert read["response"].tolist() == [r.strip() for r in frame["response"]]
    assert read["sample"].tolist() == frame["sample"].tolist()
    assert read["name"].tolist() == [p.split()[0] for p in frame["prompt"]]


@FAST
@given(data=st.binary(max_size=200))
def test_any_bytes_in_a_jsonl_file_load_or_fail_with_an_ingest_error(data, tmp_path):
    path = tmp_path / "any.jsonl"
    path.write_bytes(data)
    try:
        load_recorded(path, ASSETS)
    except IngestError:
        pass
