"""The labels issue's acceptance on the development data: the pilot's Llama-2-13b-chat outputs judged by
the default judge, a 60-per-group sample drawn by `qos label sample`, filled from the pilot's human labels,
imported by `qos label import`: the prediction-powered Muslim - White gaps cover the gaps of all 2,304
human labels on refusal, harmful refusal and any refusal."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from qos_pipeline.cli import main
from qos_pipeline.judging.rules.judge import RulesJudge
from qos_pipeline.judging.step import judge_rows
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.step import rebuild_warehouse
from qos_pipeline.staging import partition_file, write_partition
from tests.ingest.test_recorded import _ingest
from tests.paths import need_pilot

MODEL = "llama-2-13b-chat"


@pytest.mark.slow
def test_prediction_powered_gaps_cover_the_human_gaps_on_the_pilot(project, tmp_path, capsys):
    staging = project / "wh" / "staging"
    for group, (gen, _) in _ingest(need_pilot(), staging, MODEL).items():  # + the human labels as judge 'human'
        judged, _ = judge_rows(gen, RulesJudge(), "run-1")
        write_partition(judged, partition_file(staging, "judgments", group, MODEL, RulesJudge.judge_id))
    rebuild_warehouse(staging, project / "wh" / "qos.duckdb", "white", StatsSettings(resamples=200))
    main(["label", "sample", "--model", MODEL, "--per-group", "60", "--seed", "0", "--out", str(tmp_path / "s")])
    sample = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    with duckdb.connect(str(project / "wh" / "qos.duckdb"), read_only=True) as con:
        human = dict(con.execute("SELECT generation_id, recorded_label FROM generations").fetchall())
    sample.assign(label=sample["generation_id"].map(human), annotator="pilot").to_csv(tmp_path / "s.csv", index=False)
    main(["label", "import", str(tmp_path / "s.csv"), "--model", MODEL])
    assert "imported 300 labels" in capsys.readouterr().out
    with duckdb.connect(str(project / "wh" / "qos.duckdb"), read_only=True) as con:
        truth = dict(con.execute("SELECT measure, diff FROM group_comparisons WHERE judge_id = 'human' "
                                 "AND name_group = 'muslim' AND vs_group = 'white'").fetchall())
        ppi = con.execute("SELECT * FROM group_comparisons_ppi WHERE judge_id = ? AND name_group = 'muslim' "
                          "AND vs_group = 'white'", [RulesJudge.judge_id]).df().set_index("measure")
    assert truth["any_refusal"] == pytest.approx(0.295, abs=0.001)  # the pilot's published gap
    for measure in ("refusal", "harmful_refusal", "any_refusal"):
        row = ppi.loc[measure]
        assert row["n_labelled"] == 60 and row["n_labelled_vs"] == 60
        assert row["diff_ci_tn_low"] <= truth[measure] <= row["diff_ci_tn_high"], (measure, row.to_dict())
