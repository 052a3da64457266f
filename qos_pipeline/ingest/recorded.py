"""Load responses produced elsewhere into ``generations`` (and, with human labels, ``judgments``).

Accepted inputs: the pilot CSV of Chehbouni et al. (one row per prompt x sample, ``variable`` = ``label k``,
response in column ``gk`` that repeats the prompt sentence first), or a CSV/JSONL file with columns
``prompt`` (or ``prompt_text``), ``response`` and optionally ``group``, ``name``, ``label``, ``sample``,
``template``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.generation.checks import generation_checks
from qos_pipeline.generation.models.added import RecordedSource
from qos_pipeline.ingest.reading import IngestError, line_of, read_table
from qos_pipeline.prompts.design import (
    BLANK, NAME, PROMPT_META, known_templates, load_design, pilot_name_key, prompt_id, template_id)
from qos_pipeline.provenance import check_key, generation_id, utc_now
from qos_pipeline.taxonomy import normalize_label

PILOT_COLUMNS = {"variable", "prompt_sentence", "og_prompt", "type_name", "identity", "common", "name", "label"}
"""The columns that identify a file in the pilot's format (it also needs ``ethnicity`` and ``g<k>``)."""
MAX_RESPONSE_CHARS = 100_000
"""Default limit on one recorded response (``qos ingest --max-response-chars``)."""
UNKNOWN_GROUP = "unknown"
"""The group of a labelled row that names no known person (allowed only when validating judges)."""


def strip_echo(response: str, prompt: str) -> str:
    """Drop the prompt sentence that the pilot's recorded outputs repeat before the answer."""
    response = str(response).strip()
    return response[len(prompt):].strip() if response.startswith(prompt) else response


def _from_pilot(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    k = df["variable"].astype(str).str.extract(r"^label\s*(\d+)$")[0]
    if k.isna().any():
        bad = df.loc[k.isna(), "variable"].unique()[:5].tolist()
        raise IngestError(f"{path}: pilot column 'variable' must read 'label k'; found {bad}")
    k = k.astype(int)
    missing = sorted({"ethnicity", *(f"g{kk}" for kk in set(k))} - set(df.columns))
    if missing:
        raise IngestError(f"{path} is in the pilot's format but lacks column(s) {missing} (the target group of "
                          "each template, and one response column g<k> per sample k); add them, or give a "
                          "plain CSV/JSONL with prompt, response and optional group, name, label, sample")
    genders = df["type_name"].map(lambda t: pilot_name_key(t)[1])
    return pd.DataFrame({
        "prompt_text": df["prompt_sentence"].astype(str),
        "response": [strip_echo(df.at[i, f"g{kk}"], df.at[i, "prompt_sentence"]) for i, kk in zip(df.index, k)],
        "sample": k - 1, "name": df["name"].astype(str), "name_group": df["identity"].astype(str),
        "gender": genders, "popularity": df["common"].map({"common": "popular"}).fillna("less_common"),
        "template_text": df["og_prompt"].astype(str), "target_group": df["ethnicity"].astype(str),
        "label": df["label"],
    })


def _name_lookup(assets_dir: Path) -> pd.DataFrame:
    return load_design("full", assets_dir).names.set_index("name")


def _from_generic(df: pd.DataFrame, path: Path, assets_dir: Path, require_design: bool = True) -> pd.DataFrame:
    df = df.rename(columns={"prompt": "prompt_text", "group": "name_group", "template": "template_text"})
    missing = {"prompt_text", "response"} - set(df.columns)
    if missing:
        raise IngestError(f"{path} lacks column(s) {sorted(missing)}; it needs prompt and response "
                          "(optionally group, name, label, sample, template)")
    names = _name_lookup(assets_dir)
    if "name" not in df:
        df["name"] = [next((n for n in names.index if p.startswith(n + " ")), None) for p in df["prompt_text"]]
    for col in ("name_group", "gender", "popularity"):
        if col not in df:
            df[col] = df["name"].map(names[col])
    df["gender"] = df["gender"].fillna("unspecified")
    df["popularity"] = df["popularity"].fillna("popular")
    unknown = df.loc[df["name_group"].isna() | df["name"].isna(), "prompt_text"].head(3).tolist()
    if unknown and require_design:
        raise IngestError(f"{path}: cannot tell the name or group of some rows (e.g. {unknown}); add "
                          "'name' and 'group' columns or use names from assets/names.yaml")
    # A labelled file for judge validation may name no person (a refusal benchmark): its group is unknown.
    df["name_group"] = df["name_group"].fillna(UNKNOWN_GROUP)
    if "template_text" not in df:  # a prompt without a name is its own template
        df["template_text"] = [p.replace(n, NAME, 1) if isinstance(n, str) else p
                               for p, n in zip(df["prompt_text"], df["name"])]
    if "sample" not in df:
        if require_design:  # outputs to audit; a labelled benchmark may hold the same item twice
            _refuse_repeats(df, path)
        df["sample"] = df.groupby("prompt_text").cumcount()
    df["target_group"] = df.get("target_group", pd.Series("unknown", index=df.index)).fillna("unknown")
    df["response"] = [strip_echo(r, p) for r, p in zip(df["response"].fillna(""), df["prompt_text"])]
    return df


def _refuse_repeats(df: pd.DataFrame, path: Path) -> None:
    """Without a ``sample`` column each row of a prompt is another sample: a row repeated word for word (a
    file pasted twice) would inflate n, so it is an error naming the repeats and the lines they repeat."""
    text = df.astype(str)  # cells may be JSON lists or objects, which do not hash
    repeated = text.duplicated(keep="first")
    if not repeated.any():
        return
    first: dict[tuple, int] = {}
    pairs = []
    for i, key in enumerate(map(tuple, text.itertuples(index=False))):
        if key not in first:
            first[key] = i
        elif len(pairs) < 4:
            pairs.append(f"{line_of(df, i, path)} repeats {line_of(df, first[key], path)}")
    raise IngestError(f"{path}: {int(repeated.sum())} rows repeat earlier rows exactly ({'; '.join(pairs)}"
                      f"{'; ...' if repeated.sum() > len(pairs) else ''}) and there is no 'sample' column, so each "
                      "repeat would count as one more sample; remove the repeated rows, or add a 'sample' column "
                      "(0, 1, ... per prompt) if they really are separate samples")


def _samples(df: pd.DataFrame, path: Path) -> pd.Series:
    """Column ``sample`` as whole numbers >= 0; a bad value is named with its line."""
    numbers = pd.to_numeric(df["sample"], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise IngestError(f"{path} {line_of(df, i, path)}: column 'sample' holds {_shown(df['sample'].iloc[i])}; "
                          "it must be a whole number from 0 (which sample of its prompt the row is); fix it or "
                          "drop the column")
    return numbers.astype(int)


def _shown(value) -> str:
    return repr(value.item() if hasattr(value, "item") else value)  # numpy scalars as plain numbers


def _check_sizes(df: pd.DataFrame, path: Path, limit: int) -> None:
    """A response over ``limit`` characters is an error naming its line: an answer to one sentence is a few
    hundred characters, so megabytes mean a broken export (a shifted column, a whole log in one cell)."""
    lengths = df["response"].str.len()
    if limit > 0 and (lengths > limit).any():
        i = int((lengths > limit).to_numpy().nonzero()[0][0])
        raise IngestError(f"{path} {line_of(df, i, path)}: the response is {int(lengths.iloc[i]):,} characters, "
                          f"over the limit of {limit:,}; check that row (a shifted column? a whole log in one "
                          "cell?), or raise the limit with --max-response-chars")


def load_recorded(path: Path, assets_dir: Path, require_design: bool = True, frame: pd.DataFrame | None = None,
                  max_response_chars: int = MAX_RESPONSE_CHARS) -> pd.DataFrame:
    """Rows with the prompt metadata columns, ``sample``, ``response`` and (if present) ``label``.

    ``require_design`` (ingesting outputs to audit): every prompt has a [BLANK] and a known name and group.
    Without it (a labelled file to validate a judge on) rows may name no one: group ``unknown``.
    ``frame``: the file's rows already read (and renamed), else ``path`` is read. A response longer than
    ``max_response_chars`` (0: no limit) is an error.
    """
    raw = read_table(path) if frame is None else frame
    if PILOT_COLUMNS <= set(raw.columns):
        df = _from_pilot(raw, path)
    else:
        df = _from_generic(raw, path, assets_dir, require_design)
    df["prompt_text"] = df["prompt_text"].astype(str)
    bad = df.loc[~df["prompt_text"].str.contains(BLANK, regex=False), "prompt_text"].head(3).tolist()
    if bad and require_design:
        raise IngestError(f"{path}: prompts must contain {BLANK} (fill-in-the-blank design); e.g. {bad}")
    # Ids are content hashes, exactly as for generated prompts; a template of assets/ keeps its name.
    df["template_id"] = [template_id(t) for t in df["template_text"]]
    names = known_templates(assets_dir)
    df["template_name"] = [names.get(t, i) for t, i in zip(df["template_text"], df["template_id"])]
    df["prompt_id"] = [prompt_id(p) for p in df["prompt_text"]]
    df["design"] = f"ingest:{path.name}"
    df["sample"] = _samples(df, path)
    _check_sizes(df, path, max_response_chars)
    return df


def to_partitions(df: pd.DataFrame, path: Path, model: str, prompt_format: str, run_id: str, with_labels: bool,
                  version: str | None = None) -> dict[str, tuple[pd.DataFrame, list[CheckOutcome]]]:
    """Per-group generations frames and the outcomes of their checks; nothing is written. With
    ``with_labels`` each row keeps its human label (normalized) as ``recorded_label``, which the ``human``
    judge reports. ``version``: the recorded source's (default: from the file's content)."""
    check_key(model, "model")
    version = version or "recorded-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    gen = df[["prompt_id", "sample", *PROMPT_META, "response"]].copy()
    gen = gen.assign(model_key=model, model_version=version, prompt_format=prompt_format, system_prompt=None,
                     gen_config=json.dumps({"source": str(path.name)}), gen_config_hash="recorded",
                     seed=pd.array([None] * len(gen), dtype="Int64"), finish_reason="recorded",
                     n_new_tokens=pd.array([None] * len(gen), dtype="Int64"), source=f"ingest:{path.name}",
                     run_id=run_id, created_at=utc_now())
    key = f"{model}\x1f{version}\x1f{prompt_format}"
    gen.insert(0, "generation_id", [generation_id(f"{key}\x1f{p}\x1f{k}", r) for p, k, r
                                    in zip(gen["prompt_id"], gen["sample"], gen["response"])])
    if with_labels:
        gen["recorded_label"] = _labels(df, path)
    out = {}
    for group, part in gen.groupby("name_group", sort=False):
        check_key(group, "group")
        part = part.reset_index(drop=True)
        out[group] = (part, generation_checks(part, part["prompt_id"].unique().tolist(), int(part["sample"].max()) + 1))
    return out


def _labels(df: pd.DataFrame, path: Path) -> list[str]:
    if "label" not in df:
        raise IngestError(f"{path} has no 'label' column, so --labels human cannot be used")
    labels = []
    for i, raw in zip(df.index, df["label"]):
        try:
            labels.append(normalize_label(raw))
        except ValueError as exc:
            raise IngestError(f"{path} row {i + 2}: {exc}") from None
    return labels


def raise_if_failed(parts: dict[str, tuple[pd.DataFrame, list[CheckOutcome]]], path: Path) -> None:
    """Refuse a file any of whose partitions fails a blocking check, naming the file, group and checks."""
    for group, (_, outcomes) in parts.items():
        failed = [o for o in outcomes if o.blocking and not o.passed]
        if failed:
            raise IngestError(f"{path}, group {group!r}: "
                              + "; ".join(f"{o.name}: {o.description} {o.metadata}" for o in failed))


def recorded_partition(source: RecordedSource, group: str, run_id: str, assets_dir: Path
                       ) -> tuple[pd.DataFrame, list[CheckOutcome]]:
    """The generations partition of one group, read again from a recorded source (``qos ingest``)."""
    version = source.version  # checks the file is still there
    rows = load_recorded(source.file, assets_dir, max_response_chars=source.max_response_chars)
    parts = to_partitions(rows, source.file, source.key, source.prompt_format, run_id, source.labels, version)
    if group not in parts:
        raise IngestError(f"{source.file} has no rows of group {group!r} (it has {sorted(parts)}); nothing to "
                          f"materialize for generations[{group}|{source.key}]")
    return parts[group]
