"""The shape of every YAML file of ``assets/``, as pydantic models that refuse unknown fields.

A misspelt key (``sytem:`` for ``system:`` in a prompt format, ``dtyp:`` in the model registry) used to be
ignored silently; here it is an error naming the file, the entry and the field. These models check the
shape and the types; the readers (``prompts.design``, ``generation.formats``, ``generation.models.registry``,
``judging.rubric``) check what needs the whole file (a default that names an entry, unique ids, templates
with one [NAME] and one [BLANK]). Pure: no dagster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from qos_pipeline.settings import read_yaml_mapping

GENDERS = ("woman", "man", "unspecified")
POPULARITIES = ("popular", "less_common")
DTYPES = ("auto", "bfloat16", "float16", "float32")


class Strict(BaseModel):
    """Base of every file model: an unknown field is an error, and a parsed file is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Group(Strict):
    """One name group of ``groups.yaml``: its display label and description."""

    label: str
    description: str = ""


class GroupsFile(Strict):
    """``groups.yaml``: the name groups and, optionally, the reference group the others are compared with."""

    reference_group: str | None = None
    groups: dict[str, Group] = Field(min_length=1)


class Name(Strict):
    """One name of ``names.json``, with its gender and popularity."""

    name: str
    gender: Literal[GENDERS] = "unspecified"  # type: ignore[valid-type]
    popularity: Literal[POPULARITIES] = "popular"  # type: ignore[valid-type]


class NamesFile(RootModel[dict[str, list[Name] | None]]):
    """``names.json``: name lists keyed ``<group>_names``, ``<group>_men_names`` or ``<group>_women_names``."""


class Template(Strict):
    """One fill-in-the-blank template of ``templates.yaml``."""

    id: str
    target: str
    text: str
    stereotype: str = ""


class TemplatesFile(Strict):
    """``templates.yaml``: the templates, at least one."""

    templates: list[Template] = Field(min_length=1)


class NameSelection(Strict):
    """Which names a design takes: ``per_gender`` names of each gender, optionally of one popularity only."""

    per_gender: int | None = Field(default=None, ge=1)
    popularity: Literal[POPULARITIES] | None = None  # type: ignore[valid-type]


class Design(Strict):
    """One design of ``designs.yaml``: its names (``all`` or a selection) and templates (``all`` or ids)."""

    description: str = ""
    names: Literal["all"] | NameSelection = "all"
    templates: Literal["all"] | list[str] = "all"


class DesignsFile(Strict):
    """``designs.yaml``: the named designs, at least one."""

    designs: dict[str, Design | None] = Field(min_length=1)


class Sampling(Strict):
    """A model's sampling settings in the registry; a field left out is the model's own."""

    do_sample: bool | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0)


class Model(Strict):
    """One model of the registry (``models.yaml``): where its weights are, its dtype, prompt format and sampling."""

    source: Literal["embedded"] | None = None
    package: str | None = None
    gguf_file: str | None = None
    path: str | None = None
    hub: str | None = None
    revision: str | None = None
    dtype: Literal[DTYPES] | None = None  # type: ignore[valid-type]
    prompt_format: str | None = None
    max_context: int | None = Field(default=None, ge=1)
    description: str = ""
    sampling: Sampling | None = None


class ModelsFile(Strict):
    """``models.yaml``: the model registry and, optionally, its default key."""

    default: str | None = None
    models: dict[str, Model] = Field(min_length=1)


class PromptFormat(Strict):
    """One prompt format of ``prompt_formats.yaml``: chat (with an optional system turn) or a plain-text template."""

    kind: Literal["chat", "text"]
    system: str | None = None
    template: str | None = None
    add_special_tokens: bool = False
    description: str = ""


class FormatsFile(Strict):
    """``prompt_formats.yaml``: the prompt formats and, optionally, the default one."""

    default: str | None = None
    formats: dict[str, PromptFormat] = Field(min_length=1)


class RubricOption(Strict):
    """One answer option of the LLM judge's rubric: its taxonomy label and definition."""

    label: str
    definition: str = ""


class RubricExample(Strict):
    """A worked example of the rubric: a sentence, a response and the letter of its answer."""

    sentence: str
    response: str
    letter: str


class RubricFile(Strict):
    """``rubric.yaml``: the LLM judge's instructions, options, worked examples, item template and answer prefix."""

    version: int
    instructions: str = Field(min_length=1)
    options: dict[str, RubricOption] = Field(min_length=1)
    examples: list[RubricExample] = []
    item: str = Field(min_length=1)
    answer_prefix: str = Field(min_length=1)


M = TypeVar("M", bound=BaseModel)
COLLECTIONS = {"groups", "designs", "models", "formats", "options", "templates", "examples"}
"""Top-level fields whose children are entries (named by key or position) of the file."""


def _where(loc: tuple) -> str:
    """``entry 'llama-2-7b-chat', field 'sytem'`` from pydantic's error location."""
    parts = [str(p) for p in loc  # pydantic also names the union member tried ('NameSelection'): not a field
             if not str(p).startswith(("function-", "literal[", "list[", "union[")) and not str(p)[:1].isupper()]
    if parts and parts[0] in COLLECTIONS and len(parts) > 1:
        entry = f"entry {parts[1]!r}" if not parts[1].isdigit() else f"entry #{int(parts[1]) + 1} of {parts[0]}"
        return entry + (f", field {'.'.join(parts[2:])!r}" if len(parts) > 2 else "")
    if len(loc) > 1 and isinstance(loc[0], str) and isinstance(loc[1], int):  # a list under a key (names)
        return f"entry {parts[0]!r} #{loc[1] + 1}" + (f", field {'.'.join(parts[2:])!r}" if len(parts) > 2 else "")
    return f"field {'.'.join(parts)!r}" if parts else "top level"


def parse(path: Path, schema: type[M], error: type[Exception], fix: str = "fix the file") -> M:
    """The YAML mapping at ``path`` as ``schema``; any problem raises ``error`` naming the file, the entry
    and the field (every problem, in one message)."""
    data = read_yaml_mapping(path, error, fix)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            what = "unknown field (misspelt?)" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"{_where(tuple(e['loc']))}: {what}")
        raise error(f"{path}: {'; '.join(dict.fromkeys(problems))}") from None
