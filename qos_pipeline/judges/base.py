"""The judge interface: every implementation (rules, fake, later LLM and learned) has this shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


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


def get_judge(judge_id: str) -> Judge:
    """Build a judge from its id (``rules`` or a full id such as ``rules-v1``)."""
    from qos_pipeline.judges.rules import RulesJudge

    if judge_id in ("rules", RulesJudge.judge_id):
        return RulesJudge()
    raise ValueError(
        f"unknown judge {judge_id!r}; available: rules ({RulesJudge.judge_id}). "
        "Human labels enter through `qos ingest --labels human`."
    )
