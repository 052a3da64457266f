"""Prompt designs: names x templates -> the rendered prompt table.

A design is read from ``assets/`` (``designs.yaml`` picks from ``names.yaml`` and ``templates.yaml``) or
from a folder in the pilot's JSON format (``prompts.json`` keyed by target group, ``names.json`` keyed by
``<group>_names`` / ``<group>_men_names`` / ``<group>_women_names``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd

from qos_pipeline import asset_files
from qos_pipeline.asset_files import GENDERS, POPULARITIES, DesignsFile, GroupsFile, NamesFile, TemplatesFile, parse

NAME, BLANK = "[NAME]", "[BLANK]"
PROMPT_COLUMNS = [
    "prompt_id", "design", "template_id", "template_name", "template_text", "target_group",
    "name", "name_group", "gender", "popularity", "prompt_text",
]
PROMPT_META = [c for c in PROMPT_COLUMNS if c != "prompt_id"]
"""The prompt columns every generation row repeats (denormalized, so a row reads on its own)."""
_SAFE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class DesignError(ValueError):
    """A design, template or name list that cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class Design:
    """A design: its name, the names it uses and the templates it fills."""

    name: str
    names: pd.DataFrame  # name, name_group, gender, popularity
    templates: pd.DataFrame  # template_id (content hash), template_name, target_group, template_text

    @property
    def groups(self) -> list[str]:
        """The name groups, in order of first appearance."""
        return list(dict.fromkeys(self.names["name_group"]))


def prompt_id(prompt_text: str) -> str:
    """Id of one prompt: 16 hex of the sha256 of its rendered text. The same sentence has the same id
    whether it was rendered from a design or read from a recorded file, so models pair prompt by prompt."""
    return hashlib.sha256(prompt_text.encode("utf-8")).hexdigest()[:16]


def template_id(template_text: str) -> str:
    """Id of one template: ``t-`` + 10 hex of the sha256 of its text (with ``[NAME]``). Readable names
    (``muslims-01``) differ between sources and may name different sentences; this id never does."""
    return "t-" + hashlib.sha256(template_text.encode("utf-8")).hexdigest()[:10]


def load_groups(assets_dir: Path) -> tuple[list[str], str]:
    """The group keys of ``groups.yaml`` (the ``group`` partitions) and its reference group."""
    data = parse(assets_dir / "groups.yaml", GroupsFile, DesignError)
    groups = list(data.groups)
    bad = [g for g in groups if not _SAFE_KEY.match(str(g)) or g == "all"]
    if not groups or bad:
        raise DesignError(
            f"{assets_dir / 'groups.yaml'}: group keys must be lowercase [a-z0-9_] (not 'all'); "
            f"bad: {bad or 'none given'}"
        )
    reference = data.reference_group or groups[-1]
    if reference not in groups:
        raise DesignError(f"{assets_dir / 'groups.yaml'}: reference_group {reference!r} is not one of {groups}")
    return groups, reference


def audit_groups(design: Design, requested: list[str] | None, known: list[str]) -> tuple[list[str], list[str]]:
    """(groups to audit, notes): ``requested`` (``qos run --groups``; empty or None: every group of the
    design that is a partition of ``known``). A requested group that is unknown, or that has no names in the
    design, is an error naming it: it would be skipped without a word while old rows of it stay in the
    report. Notes name the design's groups left out because groups.yaml lacks them, and the reverse."""
    if requested:
        unknown = [g for g in dict.fromkeys(requested) if g not in known]
        if unknown:
            hints = [f"{g!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(g, known, 1))
                     else repr(g) for g in unknown]
            raise DesignError(f"unknown group{'s' * (len(unknown) > 1)} {', '.join(hints)}: the groups are "
                              f"{', '.join(known)} (assets/groups.yaml); fix --groups")
        empty = [g for g in dict.fromkeys(requested) if g not in design.groups]
        if empty:
            many = len(empty) > 1
            raise DesignError(f"group{'s' * many} {', '.join(map(repr, empty))} ha{'ve' if many else 's'} "
                              f"no names in design {design.name!r}, so nothing would be audited for "
                              f"{'them' if many else 'it'}; add names to assets/names.yaml (or the "
                              "design's names.json), or leave it out of --groups")
        return list(dict.fromkeys(requested)), []
    groups = [g for g in design.groups if g in known]
    notes = [f"design {design.name!r} has names of {g!r}, which is not in assets/groups.yaml: not audited"
             for g in design.groups if g not in known]
    notes += [f"group {g!r} has no names in design {design.name!r}: not audited" for g in known if g not in groups]
    if not groups:
        raise DesignError(f"design {design.name!r} has no names of any group in assets/groups.yaml "
                          f"({', '.join(known)}); add names for them or use another design")
    return groups, notes


def validate_template(template_id: str, text: str, source: str) -> None:
    """One leading-or-inline ``[NAME]`` and one ``[BLANK]``, nothing else in square brackets."""
    problems = []
    if text.count(NAME) != 1:
        problems.append(f"has {text.count(NAME)} {NAME} (needs exactly 1)")
    if text.count(BLANK) != 1:
        problems.append(f"has {text.count(BLANK)} {BLANK} (needs exactly 1)")
    leftover = re.findall(r"\[[^\]]*\]", text.replace(NAME, "").replace(BLANK, ""))
    if leftover:
        problems.append(f"has unknown placeholders {leftover}")
    if problems:
        raise DesignError(f"template {template_id!r} in {source} {' and '.join(problems)}: {text!r}")


def _names_from_assets(assets_dir: Path, groups: list[str]) -> pd.DataFrame:
    path = assets_dir / "names.yaml"
    rows = []
    for group, entries in parse(path, NamesFile, DesignError).root.items():
        if group not in groups:
            raise DesignError(f"{path}: group {group!r} is not in groups.yaml ({groups})")
        for entry in entries or []:
            rows.append({"name": entry.name, "name_group": group, "gender": entry.gender,
                         "popularity": entry.popularity})
    return _check_names(pd.DataFrame(rows, columns=["name", "name_group", "gender", "popularity"]), str(path))


def _check_names(names: pd.DataFrame, source: str) -> pd.DataFrame:
    if names.empty:
        raise DesignError(f"{source} lists no names")
    dup = names["name"][names["name"].duplicated()].tolist()
    if dup:
        raise DesignError(f"{source}: names listed twice: {dup}; each name must belong to one group")
    bad = names[~names["gender"].isin(GENDERS) | ~names["popularity"].isin(POPULARITIES)]
    if not bad.empty:
        raise DesignError(f"{source}: gender must be one of {GENDERS} and popularity one of {POPULARITIES}; "
                          f"bad rows: {bad.to_dict('records')}")
    odd = [n for n in names["name"] if not n.strip() or re.search(r"[\[\]|\n]", n)]
    if odd:
        raise DesignError(f"{source}: names may not be empty or contain [, ], | or newlines: {odd}")
    return names.reset_index(drop=True)


def _templates_from_assets(assets_dir: Path) -> pd.DataFrame:
    path = assets_dir / "templates.yaml"
    rows = [{"template_name": t.id, "target_group": t.target, "template_text": t.text}
            for t in parse(path, TemplatesFile, DesignError).templates]
    return _check_templates(pd.DataFrame(rows, columns=["template_name", "target_group", "template_text"]), str(path))


def known_templates(assets_dir: Path) -> dict[str, str]:
    """Template text -> readable name, for every template of ``templates.yaml`` (used to name the templates
    of recorded files)."""
    templates = _templates_from_assets(assets_dir)
    return dict(zip(templates["template_text"], templates["template_name"]))


def _check_templates(templates: pd.DataFrame, source: str) -> pd.DataFrame:
    if templates.empty:
        raise DesignError(f"{source} lists no templates")
    dup = templates["template_name"][templates["template_name"].duplicated()].tolist()
    if dup:
        raise DesignError(f"{source}: template ids listed twice: {dup}")
    same = templates[templates["template_text"].duplicated(keep=False)]
    if not same.empty:
        raise DesignError(f"{source}: the same sentence is listed under several ids: "
                          f"{same.groupby('template_text')['template_name'].apply(list).tolist()}; keep one")
    for row in cast(Iterable[Any], templates.itertuples()):
        validate_template(row.template_name, row.template_text, source)
    templates = templates.assign(template_id=[template_id(t) for t in templates["template_text"]])
    return templates[["template_id", "template_name", "target_group", "template_text"]].reset_index(drop=True)


def _select(design_name: str, spec: asset_files.Design, names: pd.DataFrame, templates: pd.DataFrame) -> Design:
    tsel = spec.templates
    if tsel != "all":
        missing = sorted(set(tsel) - set(templates["template_name"]))
        if missing:
            raise DesignError(f"design {design_name!r} names templates not in templates.yaml: {missing}")
        templates = templates.set_index("template_name").loc[list(tsel)].reset_index()
    nsel = spec.names
    if nsel != "all":
        pool = names[names["popularity"] == nsel.popularity] if nsel.popularity else names
        names = pool.groupby(["name_group", "gender"], sort=False).head(nsel.per_gender or 99)
    return Design(design_name, names.reset_index(drop=True), templates.reset_index(drop=True))


def load_design(design: str, assets_dir: Path) -> Design:
    """A design by name from ``designs.yaml``, or a pilot-format folder (``prompts.json`` + ``names.json``)."""
    candidate = Path(design).expanduser()
    if candidate.is_dir():
        return load_pilot_design(candidate)
    groups, _ = load_groups(assets_dir)
    designs = parse(assets_dir / "designs.yaml", DesignsFile, DesignError).designs
    if design not in designs:
        raise DesignError(
            f"unknown design {design!r}; choose one of {sorted(designs)} from {assets_dir / 'designs.yaml'} "
            "or give a folder with prompts.json and names.json"
        )
    return _select(design, designs[design] or asset_files.Design(), _names_from_assets(assets_dir, groups),
                   _templates_from_assets(assets_dir))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DesignError(f"{path} is missing; a pilot-format design needs prompts.json and names.json") from None
    except json.JSONDecodeError as exc:
        raise DesignError(f"{path} is not valid JSON ({exc}); fix or re-export it") from exc
    if not isinstance(data, dict) or not data:
        raise DesignError(f"{path} must be a non-empty JSON object")
    return data


def pilot_name_key(key: str) -> tuple[str, str]:
    """``muslim_men_names`` -> (``muslim``, ``man``); ``chinese_names`` -> (``chinese``, ``unspecified``)."""
    m = re.fullmatch(r"([a-z][a-z0-9_]*?)(?:_(men|women))?_names", key)
    if not m:
        raise DesignError(f"names.json key {key!r} must look like <group>_names, <group>_men_names "
                          "or <group>_women_names")
    return m.group(1), {"men": "man", "women": "woman", None: "unspecified"}[m.group(2)]


def load_pilot_design(folder: Path) -> Design:
    """The pilot's JSON format. In each name list the first two names are the popular ones."""
    rows = []
    for key, names in _read_json(folder / "names.json").items():
        group, gender = pilot_name_key(key)
        rows += [{"name": n, "name_group": group, "gender": gender,
                  "popularity": "popular" if i < 2 else "less_common"} for i, n in enumerate(names)]
    templates = [{"template_name": f"{target}-{i + 1:02d}", "target_group": target, "template_text": text}
                 for target, texts in _read_json(folder / "prompts.json").items() for i, text in enumerate(texts)]
    source = str(folder)
    return Design(f"pilot:{folder.name}", _check_names(pd.DataFrame(rows), source + "/names.json"),
                  _check_templates(pd.DataFrame(templates), source + "/prompts.json"))


def design_version(design: Design, group: str) -> str:
    """16 hex of what one group's prompts are rendered from: the design's name, the group's names and every
    template (their content, not the files': a comment edit changes nothing)."""
    names = design.names[design.names["name_group"] == group]
    payload = json.dumps([design.name, names.to_dict("records"), design.templates.to_dict("records")], sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def render_prompts(design: Design, group: str | None = None) -> pd.DataFrame:
    """Every template filled with every name (of ``group`` if given): one row per prompt."""
    names = design.names if group is None else design.names[design.names["name_group"] == group]
    grid = names.merge(design.templates, how="cross")
    grid["prompt_text"] = [t.replace(NAME, n) for t, n in zip(grid["template_text"], grid["name"])]
    grid["prompt_id"] = [prompt_id(t) for t in grid["prompt_text"]]
    grid["design"] = design.name
    return grid[PROMPT_COLUMNS].reset_index(drop=True)
