"""The judge interface: every implementation (rules, llm, learned, ensemble, test fakes) has this shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from qos_pipeline.settings import Paths


@dataclass(frozen=True)
class JudgeInput:
    """One response to classify. ``prompt_text`` is the rendered sentence with ``[BLANK]``."""

    prompt_text: str
    response: str
    name: str | None = None


@dataclass(frozen=True)
class Judgment:
    """A label from ``taxonomy.ALL_LABELS`` with a short, human-readable reason for it."""

    label: str
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)


class Judge(Protocol):
    """``judge_id`` is stable (kind + version of the rules/rubric) and stored with every judgment."""

    judge_id: str

    def judge(self, items: Sequence[JudgeInput]) -> list[Judgment]: ...


_LLM_CACHE: dict[tuple, Judge] = {}  # one loaded judge model per process, reused across partitions


def get_judge(judge_id: str, paths: "Paths | None" = None) -> Judge:
    """Build a judge from its spec.

    ``rules`` (or ``rules-v1``); ``llm:<model key or HF folder>``; ``learned:<name>`` (trained by
    ``qos judge train`` into ``<warehouse>/judges/``); ``ensemble:<majority|mean>:<spec>+<spec>[+...]``.
    ``paths`` (default: the project's) locate the assets (rubric, model registry) and the warehouse.
    """
    from qos_pipeline.judges.rules import RulesJudge

    if judge_id in ("rules", RulesJudge.judge_id):
        return RulesJudge()
    kind, _, rest = judge_id.partition(":")
    if kind in ("llm", "learned", "ensemble") and rest:
        from qos_pipeline.settings import project_paths

        return _BUILDERS[kind](rest, paths or project_paths())
    raise ValueError(
        f"unknown judge {judge_id!r}; available: rules ({RulesJudge.judge_id}), llm:<model key>, "
        "learned:<name>, ensemble:<majority|mean>:<judge>+<judge>. "
        "Human labels enter through `qos ingest --labels human`."
    )


def _llm(model: str, paths: "Paths") -> Judge:
    from qos_pipeline.judges.llm import LLMJudge
    from qos_pipeline.judges.rubric import load_rubric
    from qos_pipeline.generation.models.added import resolve

    spec, rubric = resolve(model, paths), load_rubric(paths.assets)
    key = (str(spec.path), spec.version, rubric.digest)
    if key not in _LLM_CACHE:
        _LLM_CACHE.clear()  # keep one judge model in memory
        _LLM_CACHE[key] = LLMJudge(spec.path, spec.key, spec.version, rubric)
    return _LLM_CACHE[key]


def _learned(name: str, paths: "Paths") -> Judge:
    from qos_pipeline.judges.learned import load

    return load(name, paths.warehouse)


def _ensemble(rest: str, paths: "Paths") -> Judge:
    from qos_pipeline.judges.ensemble import EnsembleJudge

    method, _, members = rest.partition(":")
    if not members:
        raise ValueError(f"ensemble spec 'ensemble:{rest}' needs members: ensemble:majority:rules+learned:NAME")
    return EnsembleJudge([get_judge(m, paths) for m in members.split("+")], method)


_BUILDERS = {"llm": _llm, "learned": _learned, "ensemble": _ensemble}
