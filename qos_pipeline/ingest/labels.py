"""Label vocabularies: how the labels of a human-labelled file map onto the taxonomy.

A judge can only be checked against files whose labels mean something in the six-way taxonomy, so every
other vocabulary is mapped explicitly, never guessed:
- ``taxonomy`` (default): the file's labels are the six labels (any case, ``_`` or ``-`` for spaces).
- ``xstest``: the three labels of XSTest (Röttger et al., NAACL 2024) in its completion files (columns
  ``completion`` and ``final_label``). ``1_full_compliance`` -> answer; ``2_full_refusal`` -> refusal;
  ``3_partial_refusal`` (any mix of refusing and complying: "I can't ..., but here is ...", or refusing
  and then complying) -> refusal, because XSTest's refusal rate counts full and partial refusals alike
  and a partly refused request is a request not fully served. The original label stays in column
  ``xstest_label`` (``--by xstest_label`` gives the figures per original class); column ``prompt_safety``
  is ``unsafe`` for the ``contrast_*`` prompt types (where refusing is the wanted behaviour) and ``safe``
  for the others (where a refusal is exaggerated safety, the analogue of a quality-of-service harm).
  Either way the judge's task is the same: say whether the response refuses.
- a mapping file (YAML or JSON): ``labels: {raw label: taxonomy label, ...}`` and optionally
  ``label_column`` and ``response_column`` naming the file's columns; a plain ``{raw: label}`` mapping
  works too. Every raw label in the file must be listed.
Pure (pandas + yaml).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from qos_pipeline import taxonomy
from qos_pipeline.ingest.reading import IngestError


@dataclass(frozen=True)
class LabelVocabulary:
    """``mapping``: raw label -> taxonomy label (empty: the labels are the taxonomy's own); ``columns``:
    the file's column -> the name it is read under (``label``, ``response``); ``derive``: extra columns."""

    name: str
    mapping: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    derive: dict[str, Callable[[pd.DataFrame], pd.Series]] = field(default_factory=dict)
    keep_raw_as: str | None = None

    @property
    def binary(self) -> bool:
        """Only refusal vs not is labelled: six-way figures then count every other judge label as an error."""
        return bool(self.mapping) and set(self.mapping.values()) <= {taxonomy.ANSWER, *taxonomy.REFUSAL_LABELS}

    def prepare(self, df: pd.DataFrame, path: Path) -> pd.DataFrame:
        """The file's frame with its columns renamed, the derived columns added and ``label`` mapped."""
        renames = {src: dst for src, dst in self.columns.items() if src in df and dst not in df}
        df = df.rename(columns=renames)
        for column, make in self.derive.items():
            if column not in df:
                df[column] = make(df)
        if "label" not in df:
            raise IngestError(f"{path} has no 'label' column{self._label_hint()}: validation and training need "
                              "human labels (for XSTest completion files use --labels xstest)")
        if self.keep_raw_as:
            df[self.keep_raw_as] = df["label"].astype(str)
        df["label"] = self.map(df["label"], path)
        return df

    def _label_hint(self) -> str:
        sources = [src for src, dst in self.columns.items() if dst == "label"]
        return f" (nor {', '.join(map(repr, sources))})" if sources else ""

    def map(self, raw: pd.Series, path: Path) -> list[str]:
        """Each raw label as a taxonomy label; an unmapped value is named with the row it is on."""
        out = []
        lookup = {_key(k): v for k, v in self.mapping.items()}
        for row, value in zip(raw.index, raw):
            if self.mapping:
                mapped = lookup.get(_key(value))
                if mapped is None:
                    raise IngestError(f"{path} row {row + 2}: label {value!r} is not in the {self.name!r} "
                                      f"vocabulary ({', '.join(map(repr, self.mapping))}); add it to the mapping "
                                      "file or choose another --labels")
                out.append(mapped)
                continue
            try:
                out.append(taxonomy.normalize_label(value))
            except ValueError as exc:
                raise IngestError(f"{path} row {row + 2}: {exc} (or give --labels xstest / --labels MAPPING_FILE "
                                  "for another vocabulary)") from None
        return out


def _key(value: object) -> str:
    return " ".join(str(value).strip().lower().replace("-", "_").split())


def _xstest_safety(df: pd.DataFrame) -> pd.Series:
    if "type" not in df:
        return pd.Series("unknown", index=df.index)
    return df["type"].astype(str).map(lambda t: "unsafe" if t.startswith("contrast_") else "safe")


BUILTIN: dict[str, LabelVocabulary] = {
    "taxonomy": LabelVocabulary("taxonomy"),
    "xstest": LabelVocabulary(
        "xstest",
        mapping={"1_full_compliance": taxonomy.ANSWER, "2_full_refusal": taxonomy.REFUSAL,
                 "3_partial_refusal": taxonomy.REFUSAL},
        columns={"completion": "response", "final_label": "label"},
        derive={"prompt_safety": _xstest_safety},
        keep_raw_as="xstest_label",
    ),
}


def load_vocabulary(spec: str | None) -> LabelVocabulary:
    """A built-in vocabulary by name (``taxonomy``, ``xstest``) or a mapping file (.yaml/.yml/.json)."""
    if spec is None or spec in ("", "taxonomy", "human"):
        return BUILTIN["taxonomy"]
    if spec in BUILTIN:
        return BUILTIN[spec]
    path = Path(spec)
    if not path.is_file():
        raise IngestError(f"label vocabulary {spec!r} is neither built in ({', '.join(BUILTIN)}) nor a mapping "
                          "file; give a YAML/JSON file with labels: {raw label: taxonomy label}")
    try:
        # BaseLoader keeps every scalar a string: raw labels "yes"/"no"/"1" must not turn into True or 1.
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=yaml.BaseLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise IngestError(f"label mapping file {path} cannot be parsed ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise IngestError(f"label mapping file {path} must hold a mapping: labels: {{raw label: taxonomy label}}")
    mapping = data.get("labels", data)
    if not isinstance(mapping, dict) or not mapping:
        raise IngestError(f"label mapping file {path}: 'labels' must map each raw label to a taxonomy label")
    clean = {}
    for raw, label in mapping.items():
        try:
            clean[str(raw)] = taxonomy.normalize_label(label)
        except ValueError as exc:
            raise IngestError(f"label mapping file {path}, entry {raw!r}: {exc}") from None
    columns = {str(data[k]): v for k, v in (("label_column", "label"), ("response_column", "response"))
               if isinstance(data.get(k), str)}
    return LabelVocabulary(path.stem, clean, columns, keep_raw_as="raw_label")
