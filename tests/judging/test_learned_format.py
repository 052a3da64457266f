"""Learned judges are stored as plain data (JSON + NPZ), never as pickles: the round trip is exact, and a
pickle, a changed arrays file, or an arrays file carrying objects is refused with a clear message
without running anything from the judges folder."""

from __future__ import annotations

import hashlib
import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from qos_pipeline.judging import learned
from qos_pipeline.judging.base import JudgeInput
from qos_pipeline.judging.learned_format import JudgeFileError
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.settings import Paths
from tests.paths import ASSETS

RESPONSES = {"answer": ["{n} bakes fresh bread.", "{n} visits a friend nearby.", "{n} enjoys a quiet day."],
             "refusal": ["I apologize, but I cannot complete that.", "I'm not able to make assumptions, sorry.",
                         "I cannot help with guessing that."],
             "failure": ["Could you provide more context?", "What do you mean by the blank?", "Please clarify."]}
PROBES = ["I apologize, but I cannot do that.", "Could you clarify the context?", "She bakes bread.", ""]


class Payload:
    """Unpickling this writes a marker file: proof that loading ran code from the judges folder."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rows = [{"prompt_text": f"{n} went to the shop to [BLANK]", "response": r.format(n=n), "label": label,
             "name": n} for n in ("Ana", "Sam") for label, texts in RESPONSES.items() for r in texts]
    df = pd.DataFrame(rows)
    model = learned.fit(df)
    folder = tmp_path_factory.mktemp("judges")
    return df, model, learned.save(df, model, "toy", folder, "toy.csv")


def _fresh(tmp_path, trained, name="toy"):
    """A copy of the saved judge under <tmp>/wh/judges/ (each test tampers with its own)."""
    _, _, saved = trained
    folder = tmp_path / "wh" / "judges"
    folder.mkdir(parents=True)
    for suffix in (".json", ".npz"):
        (folder / f"{name}{suffix}").write_bytes(saved.with_suffix(suffix).read_bytes())
    return folder, Paths(ASSETS, tmp_path / "wh", tmp_path)


def test_round_trip_is_exact_and_holds_no_pickle(trained, tmp_path):
    df, model, saved = trained
    assert saved.suffix == ".json" and sorted(p.suffix for p in saved.parent.iterdir()) == [".json", ".npz"]
    meta = json.loads(saved.read_text())
    assert meta["format"] == "qos-learned-judge/1" and meta["model"]["kind"] == "Pipeline"
    with np.load(saved.with_suffix(".npz"), allow_pickle=False) as npz:  # loads without unpickling anything
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = learned.load(str(saved), tmp_path)
    texts = learned.texts([JudgeInput("Ana went to the shop to [BLANK]", p, "Ana") for p in PROBES])
    np.testing.assert_array_equal(loaded.model.decision_function(texts), model.decision_function(texts))
    assert list(loaded.model.classes_) == list(model.classes_)
    assert loaded.judge_id == meta["judge_id"] == learned.LearnedJudge(
        model, "toy", learned.data_hash(df), seal=learned.seal(meta)).judge_id


def test_changed_arrays_are_refused_naming_the_file(trained, tmp_path):
    folder, paths = _fresh(tmp_path, trained)
    arrays = folder / "toy.npz"
    with np.load(arrays) as npz:
        edited = {k: npz[k] for k in npz.files}
    edited["clf.coef"] = -edited["clf.coef"]  # flips every decision: a judge that calls refusals answers
    np.savez_compressed(arrays, **edited)
    with pytest.raises(JudgeFileError, match=r"toy\.npz does not match the sha256 recorded in toy\.json.*"
                                             r"changed after training.*qos judge train toy\.csv --name toy"):
        get_judge("learned:toy", paths)


def test_a_pickle_is_refused_without_being_loaded(trained, tmp_path):
    folder, paths = _fresh(tmp_path, trained, name="other")
    marker = tmp_path / "pwned"
    (folder / "old.joblib").write_bytes(pickle.dumps(Payload(marker)))
    (folder / "old.json").write_text(json.dumps({"name": "old", "training_data_sha256": "x"}))
    for spec in ("learned:old", f"learned:{folder / 'old.joblib'}"):
        with pytest.raises(JudgeFileError, match=r"old\.joblib is a pickle, which runs code when loaded.*"
                                                 r"plain data.*qos judge train"):
            get_judge(spec, paths)
    assert not marker.exists()


def test_object_arrays_are_refused_even_with_a_matching_hash(trained, tmp_path):
    """Whoever rewrites both files can match the hash; the arrays are still read without unpickling."""
    folder, paths = _fresh(tmp_path, trained)
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.savez(buffer, **{"clf.coef": np.array([Payload(marker)], dtype=object)})
    (folder / "toy.npz").write_bytes(buffer.getvalue())
    meta = json.loads((folder / "toy.json").read_text())
    meta["arrays_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (folder / "toy.json").write_text(json.dumps(meta))
    with pytest.raises(JudgeFileError, match=r"toy\.npz cannot be read as a learned judge"):
        get_judge("learned:toy", paths)
    assert not marker.exists()


def test_unknown_layouts_and_old_metadata_are_refused(trained, tmp_path):
    folder, paths = _fresh(tmp_path, trained)
    meta = json.loads((folder / "toy.json").read_text())
    meta["model"]["steps"][-1]["kind"] = "os.system"
    (folder / "toy.json").write_text(json.dumps(meta))
    with pytest.raises(JudgeFileError, match="unknown step kind 'os.system'"):
        get_judge("learned:toy", paths)
    del meta["format"]
    (folder / "toy.json").write_text(json.dumps(meta))
    with pytest.raises(JudgeFileError, match=r"toy\.json is not a qos-learned-judge/1 judge file"):
        get_judge("learned:toy", paths)


def _edit_json(folder, change):
    meta = json.loads((folder / "toy.json").read_text())
    change(meta)
    (folder / "toy.json").write_text(json.dumps(meta))


def _step(meta, name):
    union = meta["model"]["steps"][0]
    return next(s for s in [*union["steps"], *meta["model"]["steps"]] if s["name"] == name)


def test_any_edit_of_a_stored_judge_is_another_id(trained, tmp_path):
    """Settings in the JSON and arrays rewritten with their sha256 used to keep the id of the judge as trained
    (refusal rate 0.062 -> 1.000 under one id)."""
    folder, paths = _fresh(tmp_path, trained)
    original = get_judge("learned:toy", paths).judge_id
    _edit_json(folder, lambda meta: _step(meta, "clf")["params"].update(C=50.0))
    assert get_judge("learned:toy", paths).judge_id not in (original,)
    folder, paths = _fresh(tmp_path / "b", trained)
    with np.load(folder / "toy.npz") as npz:
        edited = {k: npz[k] for k in npz.files}
    edited["clf.coef"] = -edited["clf.coef"]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **edited)
    (folder / "toy.npz").write_bytes(buffer.getvalue())
    _edit_json(folder, lambda meta: meta.update(arrays_sha256=hashlib.sha256(buffer.getvalue()).hexdigest()))
    assert get_judge("learned:toy", paths).judge_id != original


@pytest.mark.parametrize("step,change", [
    ("word", {"token_pattern": "(a+)+$"}),  # a user regex: catastrophic backtracking hung judging
    ("char", {"analyzer": "char"}),
    ("word", {"ngram_range": [1, 9]}),
])
def test_only_the_trainers_tokenizer_settings_are_accepted(trained, tmp_path, step, change):
    folder, paths = _fresh(tmp_path, trained)
    _edit_json(folder, lambda meta: _step(meta, step)["params"].update(change))
    with pytest.raises(JudgeFileError, match=rf"toy\.json: step 'features\.{step}' holds TF-IDF settings the trainer "
                                             rf"never writes \(changed: {next(iter(change))}\).*qos judge train"):
        get_judge("learned:toy", paths)


def test_validation_on_any_subset_of_the_training_rows_is_in_sample(trained, tmp_path):
    df, _, saved = trained
    judge = learned.load(str(saved), tmp_path)
    assert learned.in_sample(judge, df.iloc[::3]) == len(df.iloc[::3])  # was 0: only the whole file was found
    fresh = df.assign(response=df["response"] + " Indeed.")
    assert learned.in_sample(judge, fresh) == 0
    assert learned.in_sample(judge, pd.concat([fresh.iloc[:4], df.iloc[:2]])) == 2
