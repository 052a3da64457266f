"""How a learned judge is stored: plain data, never code. A pickle (``.joblib``) runs code when it is
loaded, so anyone who could write ``<warehouse>/judges/`` would run code in every process using the
judge; this format can only hold numbers and strings.

A judge is two files: ``<name>.json`` (metadata, the pipeline's layout: which steps, their plain
parameters, and the sha256 of the arrays file) and ``<name>.npz`` (the fitted arrays: vocabularies, idf
weights, scaler statistics, coefficients, intercepts, classes). Loading reads the arrays with
``allow_pickle=False`` (an object array is refused, not unpickled), rebuilds only the scikit-learn steps
listed in ``STEPS`` from them, and refuses arrays whose sha256 is not the one recorded in the JSON
(a file edited or replaced after training) or a layout it does not know, naming the file and what to do.
Round trip is exact: the rebuilt model's decision values equal the trained model's (tested).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

FORMAT = "qos-learned-judge/1"
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


class JudgeFileError(ValueError):
    """A stored learned judge cannot be loaded safely; the message names the file and what to do."""


_PLAIN = (str, int, float, bool, type(None))


def _plain_params(est: Any) -> dict:
    """The estimator's constructor parameters as JSON values. A parameter that is not plain data (a
    callable, a type) is left out when it is the class's default (rebuilt as such), else refused."""
    out: dict[str, Any] = {}
    defaults = type(est)().get_params(deep=False)
    for key, value in est.get_params(deep=False).items():
        if isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value):
            out[key] = list(value)
        elif isinstance(value, dict) and all(isinstance(v, _PLAIN) for v in [*value, *value.values()]):
            out[key] = value
        elif isinstance(value, _PLAIN):
            out[key] = value
        elif not (value is defaults.get(key) or value == defaults.get(key)):
            raise JudgeFileError(f"cannot store {type(est).__name__}({key}={value!r}) as plain data")
    return out


def _strings(values) -> dict[str, np.ndarray]:
    """Strings as UTF-8 bytes + offsets: exact for any text (a numpy unicode array drops trailing NULs)."""
    blobs = [str(v).encode("utf-8") for v in values]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    return {"utf8": np.frombuffer(b"".join(blobs), dtype=np.uint8), "offsets": offsets}


def _unstrings(arrays: dict[str, np.ndarray], key: str) -> list[str]:
    raw, offsets = arrays[f"{key}.utf8"].tobytes(), arrays[f"{key}.offsets"]
    return [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]


# --- one (dump, build) pair per kind of step --------------------------------------------------------------

def _dump_tfidf(est, key, arrays):
    terms = sorted(est.vocabulary_, key=est.vocabulary_.get)
    arrays.update({f"{key}.terms.{k}": v for k, v in _strings(terms).items()})
    arrays[f"{key}.idf"] = np.asarray(est.idf_, dtype=np.float64)
    return {}


TFIDF = {
    "word": {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
    # Character n-grams see placeholders ("[BLANK]", "___") and echoed brackets that words miss.
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2, "sublinear_tf": True},
}
"""The TF-IDF settings the trainer uses (``learned.make_model``), and the only ones a stored judge may hold:
tokenizing runs the stored settings on every response, so an edited ``token_pattern`` (a user regex) could
hang judging, and an edited analyzer or n-gram range would change labels under the same file."""


def _trainer_params() -> list[dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return [_plain_params(TfidfVectorizer(**settings)) for settings in TFIDF.values()]


def _build_tfidf(params, key, arrays):
    from sklearn.feature_extraction.text import TfidfVectorizer

    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    if plain not in _trainer_params():
        changed = sorted(k for k in plain if all(plain.get(k) != known.get(k) for known in _trainer_params()))
        raise JudgeFileError(f"step {key!r} holds TF-IDF settings the trainer never writes (changed: "
                             f"{', '.join(changed) or 'the set of settings'}), so it is not run")
    est = TfidfVectorizer(**params)
    terms = _unstrings(arrays, f"{key}.terms")
    est.vocabulary_ = {t: i for i, t in enumerate(terms)}
    est.fixed_vocabulary_ = False
    est.idf_ = arrays[f"{key}.idf"]
    return est


def _dump_linear(est, key, arrays):
    arrays[f"{key}.coef"], arrays[f"{key}.intercept"] = np.asarray(est.coef_), np.asarray(est.intercept_)
    arrays.update({f"{key}.classes.{k}": v for k, v in _strings(est.classes_).items()})
    return {"n_features_in": int(est.n_features_in_)}


def _build_linear(name: str):
    def build(params, key, arrays, n_features_in):
        if name == "LinearSVC":
            from sklearn.svm import LinearSVC as cls
        else:
            from sklearn.linear_model import LogisticRegression as cls
        est = cls(**params)
        est.coef_, est.intercept_ = arrays[f"{key}.coef"], arrays[f"{key}.intercept"]
        est.classes_ = np.array(_unstrings(arrays, f"{key}.classes"), dtype=object)
        est.n_features_in_ = n_features_in
        return est
    return build


def _dump_scaler(est, key, arrays):
    for attr in ("mean_", "scale_", "var_"):
        if getattr(est, attr, None) is not None:
            arrays[f"{key}.{attr.rstrip('_')}"] = np.asarray(getattr(est, attr))
    return {"n_features_in": int(est.n_features_in_), "n_samples_seen": int(np.max(est.n_samples_seen_))}


def _build_scaler(params, key, arrays, n_features_in, n_samples_seen):
    from sklearn.preprocessing import StandardScaler

    est = StandardScaler(**params)
    for attr in ("mean_", "scale_", "var_"):
        setattr(est, attr, arrays.get(f"{key}.{attr.rstrip('_')}"))
    est.n_features_in_, est.n_samples_seen_ = n_features_in, n_samples_seen
    return est


def _dump_states(est, key, arrays):
    return {}


def _build_states(params, key, arrays):
    from qos_pipeline.judging.representations import HiddenStates

    return HiddenStates(**params)


STEPS = {
    # kind: (class name as fitted, dump(est, key, arrays) -> extra plain fields, build(params, key, arrays, **extra))
    "tfidf": ("TfidfVectorizer", _dump_tfidf, _build_tfidf),
    "LinearSVC": ("LinearSVC", _dump_linear, _build_linear("LinearSVC")),
    "LogisticRegression": ("LogisticRegression", _dump_linear, _build_linear("LogisticRegression")),
    "StandardScaler": ("StandardScaler", _dump_scaler, _build_scaler),
    "HiddenStates": ("HiddenStates", _dump_states, _build_states),
}
_BY_CLASS = {cls: kind for kind, (cls, _, _) in STEPS.items()}


def _dump_step(est, key: str, arrays: dict) -> dict:
    cls = type(est).__name__
    if cls in ("Pipeline", "FeatureUnion"):
        parts = est.steps if cls == "Pipeline" else est.transformer_list
        return {"kind": cls, "steps": [{"name": n, **_dump_step(e, f"{key}.{n}" if key else n, arrays)}
                                       for n, e in parts]}
    kind = _BY_CLASS.get(cls)
    if kind is None:
        raise JudgeFileError(f"cannot store a learned judge with a {cls} step as plain data; "
                             f"known steps: Pipeline, FeatureUnion, {', '.join(_BY_CLASS)}")
    params = (est.get_params() if kind == "HiddenStates" else _plain_params(est))
    return {"kind": kind, "params": params, **STEPS[kind][1](est, key, arrays)}


def _build_step(spec: dict, key: str, arrays: dict) -> Any:
    kind = spec.get("kind")
    if kind in ("Pipeline", "FeatureUnion"):
        from sklearn.pipeline import FeatureUnion, Pipeline

        parts = [(s["name"], _build_step(s, f"{key}.{s['name']}" if key else s["name"], arrays))
                 for s in spec["steps"]]
        return Pipeline(parts) if kind == "Pipeline" else FeatureUnion(parts)
    if kind not in STEPS:
        raise JudgeFileError(f"unknown step kind {kind!r}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in (spec.get("params") or {}).items()}
    extra = {k: v for k, v in spec.items() if k not in ("kind", "params", "name", "steps")}
    return STEPS[kind][2](params, key, arrays, **extra)


def dump(model: Any, arrays_file: Path, extra: dict[str, np.ndarray] | None = None) -> dict:
    """Write the fitted model's arrays (and ``extra`` arrays, kept under ``extra.<name>``) to ``arrays_file``
    (atomically) and return the JSON fields that describe it: ``format``, ``model`` (the layout) and
    ``arrays_sha256``."""
    arrays: dict[str, np.ndarray] = {f"extra.{k}": np.asarray(v) for k, v in (extra or {}).items()}
    layout = _dump_step(model, "", arrays)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **cast(dict[str, Any], arrays))  # names as keys; numpy's stubs fear allow_pickle
    data = buffer.getvalue()
    tmp = arrays_file.with_name(f".{arrays_file.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, arrays_file)
    return {"format": FORMAT, "model": layout, "arrays_file": arrays_file.name,
            "arrays_sha256": hashlib.sha256(data).hexdigest()}


def load(meta: dict, arrays_file: Path, retrain_hint: str) -> tuple[Any, dict[str, np.ndarray]]:
    """The fitted model described by ``meta`` (the judge's JSON) from ``arrays_file``, after checking
    the format, the arrays' sha256 and the steps' settings, and the ``extra`` arrays stored with it;
    ``JudgeFileError`` (with ``retrain_hint``) otherwise."""
    if meta.get("format") != FORMAT or "model" not in meta or "arrays_sha256" not in meta:
        raise JudgeFileError(f"{arrays_file.with_suffix('.json')} is not a {FORMAT} judge file (written by an "
                             f"older version, or edited); {retrain_hint}")
    data = arrays_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["arrays_sha256"]:
        raise JudgeFileError(f"{arrays_file} does not match the sha256 recorded in "
                             f"{arrays_file.with_suffix('.json').name} "
                             f"(recorded {meta['arrays_sha256'][:12]}..., found {digest[:12]}...): it was changed "
                             f"after training, so it is not loaded; {retrain_hint}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        extra = {k[len("extra."):]: v for k, v in arrays.items() if k.startswith("extra.")}
        return _build_step(meta["model"], "", arrays), extra
    except JudgeFileError as exc:
        raise JudgeFileError(f"{arrays_file.with_suffix('.json')}: {exc}; {retrain_hint}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise JudgeFileError(f"{arrays_file} cannot be read as a learned judge ({exc}); {retrain_hint}") from exc
