"""`qos evidence`: any group's gap explained on demand, and a clear error for a group the model lacks."""

from __future__ import annotations

import shutil

import pytest

from qos_pipeline.cli import main
from tests.metrics.test_findings import planted_db


def test_evidence_prints_the_driving_templates_names_and_outputs(tmp_path, monkeypatch, capsys):
    (tmp_path / "wh").mkdir()
    shutil.copy(planted_db(), tmp_path / "wh" / "qos.duckdb")
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    main(["evidence", "--model", "m", "--group", "muslim", "--examples", "2"])
    out = capsys.readouterr().out
    # muslim names are refused on every even template: each of the 16 drives 1/16 of the +50-point gap
    assert out.startswith("What drives the any refusal gap of muslim vs white (+50.0 pts, m, judge judge-a)")
    assert out.count("+3.1") >= 5 and "6%" in out
    assert out.count("[muslim, ") == 2 and out.count("[white, ") == 2
    with pytest.raises(SystemExit) as failed:
        main(["evidence", "--model", "m", "--group", "jewish"])
    assert "no judged outputs of model 'm', group 'jewish'; groups there: muslim, white" in str(failed.value)
