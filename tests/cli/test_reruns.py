"""Reruns never leave a label joined to a response it did not judge (real HF path on a tiny Llama, real
Dagster instance, real DuckDB)."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from qos_pipeline.cli import main
from qos_pipeline.judging.rules.judge import RulesJudge, classify
from tests.judging.test_learned import NAMES, RESPONSES, TEMPLATES


@pytest.fixture()
def project(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    for var in ("QOS_JUDGES", "QOS_SEED", "QOS_DESIGN", "QOS_SAMPLES"):
        monkeypatch.delenv(var, raising=False)
    rows = [{"prompt": t.format(n=n), "response": r.format(n=n), "label": label, "group": g, "name": n}
            for t in TEMPLATES for n, g in NAMES for label, texts in RESPONSES.items() for r in texts]
    labelled = tmp_path / "labelled.csv"
    pd.DataFrame(rows).to_csv(labelled, index=False)
    main(["judge", "train", str(labelled), "--name", "toy"])
    return tmp_path


def _run(model, seed: int, judges: list[str]) -> None:
    main(["run", "--model", str(model), "--groups", "white", "muslim", "--samples", "1", "--max-new-tokens", "4",
          "--temperature", "1.0", "--seed", str(seed), *[a for j in judges for a in ("--judge", j)]])


@pytest.mark.slow
def test_new_seed_and_a_dropped_judge_leave_no_stale_label(project, tiny_llama_dir):
    _run(tiny_llama_dir, 0, ["rules", "learned:toy"])
    db = project / "wh" / "qos.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        first = con.execute("SELECT response FROM generations ORDER BY prompt_id").df()["response"].tolist()
        assert con.execute("SELECT count(DISTINCT judge_id) FROM judged").fetchone()[0] == 2
    _run(tiny_llama_dir, 1, ["rules"])  # other draws; the learned judge is not asked this time
    with duckdb.connect(str(db), read_only=True) as con:
        second = con.execute("SELECT response FROM generations ORDER BY prompt_id").df()["response"].tolist()
        judged = con.execute("SELECT judge_id, prompt_text, response, label FROM judged").df()
        rates = con.execute("SELECT DISTINCT judge_id FROM label_rates_model").df()["judge_id"].tolist()
    assert first != second  # the seed changed the responses
    assert len(judged) == 32 and set(judged["judge_id"]) == {RulesJudge.judge_id} and rates == [RulesJudge.judge_id]
    # every label in the warehouse is the rules judge's label of the very response it sits beside
    assert judged["label"].tolist() == [classify(p, r)[0] for p, r in zip(judged["prompt_text"], judged["response"])]
    # the learned judge's files labelled the replaced responses: the judgments step deleted them
    staged = sorted(p.stem for p in (project / "wh" / "staging" / "judgments").rglob("*.parquet"))
    assert staged == [RulesJudge.judge_id] * 2
