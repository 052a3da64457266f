"""Load responses produced elsewhere into ``generations`` (and, with human labels, ``judgments``).

Accepted inputs: the pilot CSV of Chehbouni et al. (one row per prompt x sample, ``variable`` = ``label k``,
response in column ``gk`` that repeats the prompt sentence first), or a CSV/JSONL file with columns
``prompt`` (or ``prompt_text``), ``response`` and optionally ``group``, ``name``, ``label``, ``sample``,
``template``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from qos_pipeline.ingest.reading import (
    CHUNK_ROWS,
    LINES,
    IngestError,
    iter_table,
    joined,
    line_numbers,
    line_of,
    physical_lines,
)
from qos_pipeline.prompts.design import (
    BLANK,
    NAME,
    known_templates,
    load_design,
    pilot_name_key,
    prompt_id,
    template_id,
)
from qos_pipeline.taxonomy import label_key

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
    if any(m.startswith("g") for m in missing) and path.suffix.lower() == ".csv":
        # this chunk may hold some samples only: name the response columns of every sample in the file
        every = pd.read_csv(path, usecols=["variable"], keep_default_na=False)["variable"].astype(str)
        ks = every.str.extract(r"^label\s*(\d+)$")[0].dropna().astype(int)
        missing = sorted(set(missing) | {f"g{kk}" for kk in set(ks)} - set(df.columns))
    if missing:
        raise IngestError(f"{path} is in the pilot's format but lacks column(s) {missing} (the target group of "
                          "each template, and one response column g<k> per sample k); add them, or give a "
                          "plain CSV/JSONL with prompt, response and optional group, name, label, sample")
    genders = df["type_name"].map(lambda t: pilot_name_key(t)[1])
    return pd.DataFrame({
        "prompt_text": df["prompt_sentence"].astype(str).str.strip(),
        "response": [strip_echo("" if pd.isna(df.at[i, f"g{kk}"]) else cast(str, df.at[i, f"g{kk}"]),
                                cast(str, df.at[i, "prompt_sentence"]))
                     for i, kk in zip(df.index, k)],
        "sample": k - 1, "name": df["name"].astype(str), "name_group": df["identity"].astype(str),
        "gender": genders, "popularity": df["common"].map({"common": "popular"}).fillna("less_common"),
        "template_text": df["og_prompt"].astype(str), "target_group": df["ethnicity"].astype(str),
        "label": df["label"],
    })


def _name_lookup(assets_dir: Path) -> pd.DataFrame:
    return load_design("full", assets_dir).names.set_index("name")


def _from_generic(df: pd.DataFrame, path: Path, names: pd.DataFrame, numbering: _Numbering,
                  require_design: bool = True) -> pd.DataFrame:
    df = df.rename(columns={"prompt": "prompt_text", "group": "name_group", "template": "template_text"})
    missing = {"prompt_text", "response"} - set(df.columns)
    if missing:
        raise IngestError(f"{path} lacks column(s) {sorted(missing)}; it needs prompt and response "
                          "(optionally group, name, label, sample, template)")
    # Stored as these are: so repeats are told (and samples numbered) on the text as stored, not as typed.
    df["prompt_text"] = df["prompt_text"].astype(str).str.strip()
    df["response"] = [strip_echo(r, p) for r, p in zip(df["response"].fillna(""), df["prompt_text"])]
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
    df["target_group"] = df.get("target_group", pd.Series("unknown", index=df.index)).fillna("unknown")
    if "sample" not in df:
        df["sample"] = numbering.number(df)
    return df


class _Numbering:
    """Sample numbers of a file without a ``sample`` column, across its chunks: each row of a prompt is that
    prompt's next sample. With ``refuse_repeats`` (outputs to audit; a labelled benchmark may hold the same
    item twice) a row repeated as stored (a file pasted twice, even with trailing spaces or labels in capitals)
    would inflate n, so ``finish`` refuses the file, naming the repeats and the lines they repeat. Holds one
    counter per prompt and 16 bytes per row."""

    KEYS = ("prompt_text", "response", "name", "name_group", "label", "template_text", "target_group")

    def __init__(self, path: Path, refuse_repeats: bool):
        self.path, self.refuse = path, refuse_repeats
        self.next: dict[str, int] = {}
        self.hashes: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []

    def number(self, df: pd.DataFrame) -> np.ndarray:
        if self.refuse:
            text = pd.DataFrame({k: df[k].astype(str) if k in df else "" for k in self.KEYS}, index=df.index)
            if "label" in df:  # labels are stored normalized (case, '_' and '-', spaces)
                text["label"] = df["label"].map(label_key)
            self.hashes.append(pd.util.hash_pandas_object(text, index=False).to_numpy())
            self.lines.append(line_numbers(df, self.path))
        prompts = df["prompt_text"].astype(str)
        numbers = prompts.groupby(prompts, sort=False).cumcount().to_numpy() + \
            prompts.map(self.next).fillna(0).astype(int).to_numpy()
        latest = pd.Series(numbers + 1, index=prompts.to_numpy()).groupby(level=0).max()
        self.next.update(cast(dict[str, int], latest.to_dict()))
        return numbers

    def finish(self) -> None:
        if not self.hashes:
            return
        hashes, lines = np.concatenate(self.hashes), np.concatenate(self.lines)
        order = np.argsort(hashes, kind="stable")
        repeated = np.zeros(len(hashes), dtype=bool)
        repeated[order[1:]] = hashes[order][1:] == hashes[order][:-1]
        count = int(repeated.sum())
        if not count:
            return
        shown = [(i, int(np.argmax(hashes == hashes[i]))) for i in np.flatnonzero(repeated)[:4]]
        positions = [n for pair in shown for n in pair]
        at = dict(zip(positions, physical_lines(self.path, [lines[n] for n in positions])))
        pairs = [f"line {at[i]} repeats line {at[j]}" for i, j in shown]
        raise IngestError(f"{self.path}: {count} rows repeat earlier rows exactly ({'; '.join(pairs)}"
                          f"{'; ...' if count > len(pairs) else ''}) and there is no 'sample' column, so each "
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


class _TemplateNames:
    """Readable names of a file's templates, the same in every chunk: a template of assets/ keeps its name;
    in a pilot file a template is named as the pilot's prompts.json names it (target group and position
    among that target's templates in the file, whose order is prompts.json's: ``muslims-01``); else by its
    first words (``got into the plane to ___``), made unique. The id stays the hash of the text."""

    WORDS = 6

    def __init__(self, known: dict[str, str]):
        self.known = known
        self.given: dict[str, str] = {}  # template text -> its name
        self.per_target: dict[str, int] = {}  # names numbered per target group

    def _words(self, text: str) -> str:
        words = text.replace(NAME, " ").replace(BLANK, "___").split()
        name = " ".join(words[: self.WORDS]) + (" ..." if len(words) > self.WORDS else "")
        taken, base, i = set(self.given.values()), name, 1
        while name in taken:
            i += 1
            name = f"{base} ({i})"
        return name

    def __call__(self, text: str, target: str, pilot: bool) -> str:
        if text not in self.given:
            if text in self.known:
                self.given[text] = self.known[text]
            elif pilot:
                self.per_target[target] = self.per_target.get(target, 0) + 1
                self.given[text] = f"{target}-{self.per_target[target]:02d}"
            else:
                self.given[text] = self._words(text)
        return self.given[text]


class _Context:
    """What converting every chunk of one file needs once: the design's names and templates, the numbering."""

    def __init__(self, path: Path, assets_dir: Path, require_design: bool, max_response_chars: int):
        self.path, self.require, self.limit = path, require_design, max_response_chars
        self.names, self.template_names = _name_lookup(assets_dir), _TemplateNames(known_templates(assets_dir))
        self.numbering = _Numbering(path, refuse_repeats=require_design)

    def convert(self, raw: pd.DataFrame) -> pd.DataFrame:
        path, lines = self.path, raw.attrs.get(LINES)
        pilot = PILOT_COLUMNS <= set(raw.columns)
        if pilot:
            df = _from_pilot(raw, path)
        else:
            df = _from_generic(raw, path, self.names, self.numbering, self.require)
        if lines is not None:
            df.attrs[LINES] = lines
        df["prompt_text"] = df["prompt_text"].astype(str)
        bad = df.loc[~df["prompt_text"].str.contains(BLANK, regex=False), "prompt_text"].head(3).tolist()
        if bad and self.require:
            raise IngestError(f"{path}: prompts must contain {BLANK} (fill-in-the-blank design); e.g. {bad}")
        # Ids are content hashes, exactly as for generated prompts; names are for reading (_TemplateNames).
        df["template_id"] = [template_id(t) for t in df["template_text"]]
        pairs = zip(df["template_text"], df["target_group"])
        df["template_name"] = [self.template_names(t, g, pilot) for t, g in pairs]
        df["prompt_id"] = [prompt_id(p) for p in df["prompt_text"]]
        df["design"] = f"ingest:{path.name}"
        df["sample"] = _samples(df, path)
        _check_sizes(df, path, self.limit)
        return df


def iter_recorded(path: Path, assets_dir: Path, require_design: bool = True,
                  max_response_chars: int = MAX_RESPONSE_CHARS, chunk_rows: int = CHUNK_ROWS
                  ) -> Iterator[pd.DataFrame]:
    """The rows of ``load_recorded``, ``chunk_rows`` at a time, so memory stays flat in the file's size. A
    file with rows repeated word for word (and no ``sample`` column) is refused after its last chunk: use
    the chunks only once the iteration has ended without an error."""
    context = _Context(path, assets_dir, require_design, max_response_chars)
    for raw in iter_table(path, chunk_rows):
        yield context.convert(raw)
    context.numbering.finish()


def load_recorded(path: Path, assets_dir: Path, require_design: bool = True, frame: pd.DataFrame | None = None,
                  max_response_chars: int = MAX_RESPONSE_CHARS) -> pd.DataFrame:
    """Rows with the prompt metadata columns, ``sample``, ``response`` and (if present) ``label``.

    ``require_design`` (ingesting outputs to audit): every prompt has a [BLANK] and a known name and group.
    Without it (a labelled file to validate a judge on) rows may name no one: group ``unknown``.
    ``frame``: the file's rows already read (and renamed), else ``path`` is read. A response longer than
    ``max_response_chars`` (0: no limit) is an error. The whole file in one frame: ``iter_recorded`` for
    files of any size.
    """
    if frame is None:
        return joined(list(iter_recorded(path, assets_dir, require_design, max_response_chars)))
    context = _Context(path, assets_dir, require_design, max_response_chars)
    df = context.convert(frame)
    context.numbering.finish()
    return df
