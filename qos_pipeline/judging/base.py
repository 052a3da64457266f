"""The judge interface: every implementation (rules, llm, learned, ensemble, test fakes) has this shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class JudgeInput:
    """One response to classify. ``prompt_text`` is the rendered sentence with ``[BLANK]``."""

    prompt_text: str
    response: str
    name: str | None = None
    recorded_label: str | None = None  # the human label stored with a recorded response (``qos ingest``)


@dataclass(frozen=True)
class Judgment:
    """A label from ``taxonomy.ALL_LABELS`` with a short, human-readable reason for it."""

    label: str
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)


class Judge(Protocol):
    """``judge_id`` is stable (kind + version of the rules/rubric) and stored with every judgment."""

    judge_id: str

    def judge(self, items: Sequence[JudgeInput]) -> list[Judgment]:
        """One judgment per item, in order."""
