"""`qos label sample` and `qos label import` on a real warehouse: the sample files, blind and stratified;
labels read back from the CSV and from Label Studio exports, stored, replaced on relabel, agreed between
annotators, refused with the place when wrong; and the prediction-powered tables they feed."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from qos_pipeline.cli import main
from qos_pipeline.defs.partitions import model_group_key
from tests.fakes import fake_definitions

MODEL = "fake-model"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A warehouse of a generated audit (fake generator refusing Mohammed and Fatima, rules judge)."""
    folder = tmp_path_factory.mktemp("labelled") / "wh"
    defs, paths = fake_definitions(folder, design="demo", samples=2)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("model", [MODEL])
        run = lambda job, key=None: defs.resolve_job_def(job).execute_in_process(  # noqa: E731
            instance=instance, partition_key=key).success
        assert all(run("prompts_job", g) for g in ("muslim", "white"))
        assert all(run("audit_job", model_group_key(MODEL, g)) for g in ("muslim", "white"))
        assert run("metrics_job")
    return folder


@pytest.fixture()
def wh(built, project):
    """A copy of the built warehouse as this test's QOS_WAREHOUSE."""
    target = project / "wh"
    shutil.copytree(built, target)
    return target


def _sample(tmp_path, per_group=6, seed=0, name="s"):
    main(["label", "sample", "--model", MODEL, "--per-group", str(per_group), "--seed", str(seed),
          "--out", str(tmp_path / name)])
    return pd.read_csv(tmp_path / f"{name}.csv", dtype=str, keep_default_na=False)


def _fill(frame: pd.DataFrame, annotator: str, harmful: set[str] = frozenset()) -> pd.DataFrame:
    """Label like a human would: the fake's refusals are refusals (harmful for the ids in ``harmful``)."""
    refused = frame["response"].str.startswith("I apologize")
    return frame.assign(label=["harmful refusal" if g in harmful else ("refusal" if r else "answer")
                               for g, r in zip(frame["generation_id"], refused)], annotator=annotator)


def _db(wh):
    return duckdb.connect(str(wh / "qos.duckdb"), read_only=True)


def test_sample_is_seeded_stratified_blind_and_in_three_formats(wh, tmp_path):
    frame = _sample(tmp_path)
    assert list(frame.columns) == ["generation_id", "prompt", "response", "name_group", "name", "template", "label",
                                   "annotator"]
    assert frame.groupby("name_group").size().to_dict() == {"muslim": 6, "white": 6}
    assert (frame["label"] == "").all() and "judge" not in " ".join(frame.columns)  # annotators label blind
    assert frame.groupby("name_group")["template"].nunique().min() == 6  # one per template before a second
    tasks = json.loads((tmp_path / "s.json").read_text())
    assert [t["data"]["generation_id"] for t in tasks] == list(frame["generation_id"])
    config = (tmp_path / "s.label_config.xml").read_text()
    assert config.count("<Choice value=") == 6 and 'name="label"' in config
    assert _sample(tmp_path, name="again").equals(frame)  # the same seed draws the same rows
    assert not _sample(tmp_path, seed=1, name="other")["generation_id"].equals(frame["generation_id"])


def test_import_stores_labels_and_feeds_validation_and_prediction_powered_tables(wh, tmp_path, capsys):
    frame = _fill(_sample(tmp_path), "ana")
    frame.to_csv(tmp_path / "ana.csv", index=False)
    main(["label", "import", str(tmp_path / "ana.csv"), "--model", MODEL])
    out = capsys.readouterr().out
    assert "imported 12 labels" in out and "12 new" in out and "six-way kappa" in out
    with _db(wh) as con:
        assert con.execute("SELECT count(*), count(DISTINCT annotator) FROM human_labels").fetchone() == (12, 1)
        gaps = con.execute("SELECT * FROM group_comparisons_ppi WHERE measure = 'any_refusal' "
                           "AND is_reference").df()
        checked = con.execute("SELECT n FROM judge_validations WHERE outputs_model = ? AND name_group = 'all'",
                              [MODEL]).fetchall()
    assert len(gaps) == 1 and gaps.iloc[0]["n_labelled"] == 6 and gaps.iloc[0]["family"] == "primary"
    assert checked == [(12,)]
    # labelled rows are never drawn again
    assert not set(_sample(tmp_path, seed=5, name="next")["generation_id"]) & set(frame["generation_id"])


def test_relabel_replaces_and_a_second_annotator_gives_agreement(wh, tmp_path, capsys):
    frame = _fill(_sample(tmp_path), "ana")
    frame.to_csv(tmp_path / "ana.csv", index=False)
    main(["label", "import", str(tmp_path / "ana.csv"), "--model", MODEL])
    refused = frame[frame["label"] == "refusal"]["generation_id"]
    changed = _fill(frame, "ana", harmful=set(refused[:1]))
    changed.to_csv(tmp_path / "ana2.csv", index=False)
    main(["label", "import", str(tmp_path / "ana2.csv"), "--model", MODEL])
    assert "0 new, 12 relabelled" in capsys.readouterr().out
    frame.assign(annotator="ben").to_csv(tmp_path / "ben.csv", index=False)
    main(["label", "import", str(tmp_path / "ben.csv"), "--model", MODEL])
    with _db(wh) as con:
        labels = con.execute("SELECT annotator, label, count(*) FROM human_labels GROUP BY ALL ORDER BY ALL").fetchall()
        agreement = con.execute("SELECT annotator_a, annotator_b, n, agreement FROM annotator_agreement").fetchall()
    assert ("ana", "harmful refusal", 1) in labels and sum(n for a, _, n in labels if a == "ana") == 12
    assert agreement == [("ana", "ben", 12, pytest.approx(11 / 12))]


def test_label_studio_exports_are_read(wh, tmp_path):
    frame = _fill(_sample(tmp_path), "x")
    full = [{"id": i, "data": {"generation_id": g},
             "annotations": [{"completed_by": {"email": "ana@lab"}, "was_cancelled": False,
                              "result": [{"from_name": "label", "to_name": "response", "type": "choices",
                                          "value": {"choices": [lab]}}]}]}
            for i, (g, lab) in enumerate(zip(frame["generation_id"], frame["label"]))]
    (tmp_path / "export.json").write_text(json.dumps(full))
    main(["label", "import", str(tmp_path / "export.json"), "--model", MODEL])
    minimal = [{"id": i, "generation_id": g, "label": lab, "annotator": 7}
               for i, (g, lab) in enumerate(zip(frame["generation_id"], frame["label"]))]
    (tmp_path / "min.json").write_text(json.dumps(minimal))
    main(["label", "import", str(tmp_path / "min.json"), "--model", MODEL])
    with _db(wh) as con:
        rows = dict(con.execute("SELECT annotator, count(*) FROM human_labels GROUP BY 1").fetchall())
    assert rows == {"ana@lab": 12, "7": 12}


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.assign(generation_id=["0" * 16] + list(f["generation_id"][1:])),
     "are not outputs of model 'fake-model' in the warehouse (line 2: '0000000000000000')"),
    (lambda f: f.assign(label=["maybe"] + list(f["label"][1:])), "unknown label(s) line 2: 'maybe'"),
    (lambda f: f.assign(label=""), "holds no label yet (12 rows without one)"),
])
def test_bad_label_files_are_refused_with_their_place_and_store_nothing(wh, tmp_path, capsys, edit, message):
    frame = edit(_fill(_sample(tmp_path), "ana"))
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SystemExit) as failed:
        main(["label", "import", str(tmp_path / "bad.csv"), "--model", MODEL])
    assert message in str(failed.value)
    assert not (wh / "staging" / "human_labels").exists()


def test_missing_file_and_unknown_model_are_named(wh, tmp_path):
    with pytest.raises(SystemExit) as failed:
        main(["label", "import", str(tmp_path / "nope.csv"), "--model", MODEL])
    assert f"file not found: {tmp_path / 'nope.csv'}" in str(failed.value)
    with pytest.raises(SystemExit) as failed:
        main(["label", "sample", "--model", "other", "--per-group", "3", "--out", str(tmp_path / "s")])
    assert "model 'other' has no judged outputs" in str(failed.value) and MODEL in str(failed.value)
