"""Judges turn (prompt, response) pairs into taxonomy labels. See ``base.Judge``."""

from qos_pipeline.judges.base import Judge, JudgeInput, Judgment, get_judge

__all__ = ["Judge", "JudgeInput", "Judgment", "get_judge"]
