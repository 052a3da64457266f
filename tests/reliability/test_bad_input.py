"""Bad input is refused before anything is written, with a message naming the file, line or group and
what to do: the ingest parser's errors, repeated rows, bad samples."""

from __future__ import annotations

import json

import pytest

from qos_pipeline.ingest.reading import IngestError
from qos_pipeline.ingest.recorded import load_recorded
from tests.paths import ASSETS

ROWS = [{"prompt": "John went to [BLANK]", "response": "the park."},
        {"prompt": "Mohammed went to [BLANK]", "response": "the store."}]


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _jsonl(rows):
    return "\n".join(json.dumps(r) for r in rows) + "\n"


@pytest.mark.parametrize("name,text,match", [
    ("broken.jsonl", _jsonl(ROWS) + '{"prompt": "Emily went to [BLANK]", "response": "x"\n',
     r"broken\.jsonl line 3: not valid JSON .*fix or remove that line"),
    ("blank.jsonl", _jsonl(ROWS[:1]) + "\n\n" + "not json\n", r"blank\.jsonl line 4: not valid JSON"),
    ("array.jsonl", json.dumps(ROWS, indent=1), r"array\.jsonl holds a JSON array.*one object per line"),
    ("oneline-array.jsonl", json.dumps(ROWS), r"holds a JSON array"),
    ("scalar.jsonl", _jsonl(ROWS) + "42\n", r"scalar\.jsonl line 3: a JSON int, not an object"),
    ("sample.csv", "prompt,response,sample\nJohn went to [BLANK],the park.,0\nJohn went to [BLANK],home.,abc\n",
     r"sample\.csv line 3: column 'sample' holds 'abc'; it must be a whole number"),
    ("negative.jsonl", _jsonl([{**ROWS[0], "sample": -1}]), r"negative\.jsonl line 1: column 'sample' holds -1"),
    ("half.jsonl", _jsonl([{**ROWS[0], "sample": 0}, {**ROWS[0], "sample": 1.5}]), r"line 2: column 'sample' holds 1\.5"),
])
def test_parser_errors_name_the_line_and_the_fix(tmp_path, name, text, match):
    with pytest.raises(IngestError, match=match):
        load_recorded(_write(tmp_path, name, text), ASSETS)


@pytest.mark.parametrize("name", ["latin1.csv", "latin1.jsonl"])
def test_a_file_not_in_utf8_says_save_as_utf8(tmp_path, name):
    rows = [{"prompt": "José went to [BLANK]", "response": "el café."}]
    text = "prompt,response\nJosé went to [BLANK],el café.\n" if name.endswith(".csv") else _jsonl(rows)
    with pytest.raises(IngestError, match=r"is not UTF-8 text \(line [12], byte b'\\xe9'\); save it as UTF-8"):
        load_recorded(_write(tmp_path, name, text.replace("\\u00e9", "é"), "latin-1"), ASSETS)


def test_repeated_rows_without_sample_are_named_not_counted(tmp_path):
    # the same file pasted three times used to become three samples per prompt (n tripled)
    path = _write(tmp_path, "tripled.jsonl", _jsonl(ROWS * 3))
    with pytest.raises(IngestError, match=r"4 rows repeat earlier rows exactly \(line 3 repeats line 1; line 4 "
                                          r"repeats line 2; line 5 repeats line 1; line 6 repeats line 2\).*"
                                          r"add a 'sample' column"):
        load_recorded(path, ASSETS)
    # several responses of one prompt are samples, as before; with a sample column repeats are the user's call
    other = [{**ROWS[0], "response": r} for r in ("the park.", "home.")]
    assert load_recorded(_write(tmp_path, "ok.jsonl", _jsonl(other)), ASSETS)["sample"].tolist() == [0, 1]
    numbered = [{**r, "sample": k} for k, r in enumerate([ROWS[0], ROWS[0]])]
    assert load_recorded(_write(tmp_path, "numbered.jsonl", _jsonl(numbered)), ASSETS)["sample"].tolist() == [0, 1]


def test_a_response_over_the_size_limit_is_named(tmp_path):
    rows = [ROWS[0], {**ROWS[1], "response": "x" * 200_001}]
    path = _write(tmp_path, "huge.jsonl", _jsonl(rows))
    with pytest.raises(IngestError, match=r"huge\.jsonl line 2: the response is 200,001 characters, over the limit "
                                          r"of 100,000;.*--max-response-chars"):
        load_recorded(path, ASSETS)
    assert len(load_recorded(path, ASSETS, max_response_chars=300_000)) == 2
    assert len(load_recorded(path, ASSETS, max_response_chars=0)) == 2  # 0: no limit


@pytest.mark.parametrize("name,data,line", [
    ("nul.csv", b"prompt,response\nJohn went to [BLANK],the park.\nMohammed went to [BLANK],the st\0ore.\n", 3),
    ("nul.jsonl", b'{"prompt": "John went to [BLANK]", "response": "the \\u0000park."}\n', 1),
])
def test_a_nul_in_the_text_is_refused_with_its_line(tmp_path, name, data, line):
    # a NUL byte used to cut the CSV response there, silently
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(IngestError, match=rf"{name} line {line}: a NUL (byte|character)"):
        load_recorded(path, ASSETS)


def test_none_na_and_null_are_text_and_only_an_empty_cell_is_missing(tmp_path):
    text = "prompt,response\n" + "".join(f"{p},{r}\n" for p, r in [
        ("John went to [BLANK]", "None"), ("Mohammed went to [BLANK]", "NA"), ("Emily went to [BLANK]", "null"),
        ("Keisha went to [BLANK]", "")])
    df = load_recorded(_write(tmp_path, "words.csv", text), ASSETS)
    assert df["response"].tolist() == ["None", "NA", "null", ""]  # were "", "", "" and ""


@pytest.mark.parametrize("second", [
    {**ROWS[0], "response": "the park. "},  # a trailing space, stripped when stored
    {**ROWS[0], "prompt": ROWS[0]["prompt"] + " "},
])
def test_repeats_are_found_on_the_text_as_stored(tmp_path, second):
    path = _write(tmp_path, "pasted.jsonl", _jsonl([ROWS[0], second]))
    with pytest.raises(IngestError, match=r"1 rows repeat earlier rows exactly \(line 2 repeats line 1\)"):
        load_recorded(path, ASSETS)


def test_labels_in_capitals_repeat_their_lower_case_row(tmp_path):
    rows = [{**ROWS[0], "label": "refusal"}, {**ROWS[0], "label": "Refusal"}]
    with pytest.raises(IngestError, match=r"line 2 repeats line 1"):
        load_recorded(_write(tmp_path, "labels.jsonl", _jsonl(rows)), ASSETS)


def test_messages_name_the_physical_line_of_multi_line_csv_records(tmp_path):
    text = ('prompt,response,sample\n"John went to [BLANK]","the park,\nthen home\nat last.",0\n'
            'Mohammed went to [BLANK],the store.,abc\n')
    with pytest.raises(IngestError, match=r"line 5: column 'sample' holds 'abc'"):  # was "line 3" (records)
        load_recorded(_write(tmp_path, "multi.csv", text), ASSETS)
    text = ('prompt,response\n"John went to [BLANK]","the park,\nthen home."\nEmily went to [BLANK],x\n\n'
            '"John went to [BLANK]","the park,\nthen home."\n')
    with pytest.raises(IngestError, match=r"line 6 repeats line 2"):
        load_recorded(_write(tmp_path, "multi2.csv", text), ASSETS)


def test_every_missing_pilot_response_column_is_named(tmp_path):
    """A pilot-format file without g1..g3 whose first chunk holds sample 1 only named g1 alone."""
    from qos_pipeline.ingest.recorded import iter_recorded

    header = "variable,prompt_sentence,og_prompt,type_name,identity,common,name,label,ethnicity\n"
    rows = [f"label {k},John went to [BLANK],[NAME] went to [BLANK],white_male,white,common,John,answer,x\n"
            for k in (1, 1, 2, 3)]
    path = _write(tmp_path, "pilot.csv", header + "".join(rows))
    with pytest.raises(IngestError, match=r"lacks column\(s\) \['g1', 'g2', 'g3'\]"):
        list(iter_recorded(path, ASSETS, chunk_rows=2))
