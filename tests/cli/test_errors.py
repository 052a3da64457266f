"""CLI errors end with one short line naming the thing and what to do; the full traceback (and the Dagster
messages of a failed step) goes to a log file whose path is printed."""

from __future__ import annotations

import pytest

from qos_pipeline.cli import main


def _failure(capsys, argv) -> tuple[str, list[str]]:
    """(the exit message, the lines printed on stderr) of a failing command."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return str(exc.value), capsys.readouterr().err.splitlines()


def _log(err: list[str]):
    from pathlib import Path

    line = [x for x in err if "full traceback in " in x][-1]
    return Path(line.split("full traceback in ", 1)[1]).read_text()


def test_a_bad_file_ends_with_one_line_and_a_log_with_the_traceback(project, capsys):
    bad = project / "outs.jsonl"
    bad.write_text('{"prompt": "John went to [BLANK]", "response": "x"}\n{"prompt": \n')
    message, err = _failure(capsys, ["ingest", str(bad), "--model", "m"])
    assert message == f"qos ingest: {bad} line 2: not valid JSON (Expecting value at column 12); fix or remove that line " \
                      "(each line must be one JSON object)"
    log = _log(err)
    assert f"qos ingest {bad} --model m" in log and "Traceback (most recent call last)" in log and "IngestError" in log
    assert str(project / "wh" / "logs") in err[-1]


def test_a_failing_dagster_step_prints_its_cause_not_its_stack(project, capsys):
    stray = project / "wh" / "staging" / "generations" / "model=m" / "group=white" / "data-copy.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    message, err = _failure(capsys, ["rebuild"])
    assert message.startswith("qos rebuild: metrics_job, step metric_tables failed (run ")
    assert f"unexpected file {stray}" in message and "\n" not in message
    assert len(err) < 40 and not any("Stack Trace" in x or 'File "' in x for x in err)  # was 140-260 lines
    log = _log(err)
    assert "step metric_tables failed" in log and "staging.py" in log  # the step's own stack trace


def test_expected_conditions_say_so_first_and_write_no_log(project, capsys):
    """A misspelt path is "file not found" (not a problem of the model key it names), and neither it nor an
    empty warehouse is a bug: one line, no traceback log."""
    missing = project / "outs-typo.jsonl"
    message, err = _failure(capsys, ["ingest", str(missing), "--model", "m"])
    assert message == f"qos ingest: file not found: {missing}"
    message, err2 = _failure(capsys, ["report"])
    assert message == f"qos report: {project / 'wh' / 'qos.duckdb'} does not exist yet: run `qos run` (or `qos ingest`) first"
    assert not any("full traceback" in x for x in err + err2)
    assert not (project / "wh" / "logs").exists() or not list((project / "wh" / "logs").iterdir())
