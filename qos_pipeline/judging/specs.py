"""Judge specs -> judges: ``rules``, ``llm:<model>``, ``learned:<name>``, ``ensemble:<method>:<a>+<b>``."""

from __future__ import annotations

import hashlib

from qos_pipeline.generation.models.source import resolve
from qos_pipeline.judging.base import Judge
from qos_pipeline.judging.ensemble import EnsembleJudge
from qos_pipeline.judging.human import HUMAN_JUDGE, RecordedLabels
from qos_pipeline.judging.learned import load as load_learned
from qos_pipeline.judging.llm import LLMJudge
from qos_pipeline.judging.rubric import load_rubric
from qos_pipeline.judging.rules.judge import RulesJudge
from qos_pipeline.settings import Paths

DEFAULT = "default"
DEFAULT_SPEC = "rules"
"""What ``default`` stands for: the project's recommended offline judge (no model, no training, no GPU).
It is an alias: judgments store the id of the judge it names, so changing it here is a new judge there."""


def get_judge(judge_id: str, paths: Paths | None = None) -> Judge:
    """Build a judge from its spec.

    ``default`` (the recommended offline judge, ``DEFAULT_SPEC``); ``rules`` (or its id, ``rules.<hash>``);
    ``llm:<model key or HF folder>``; ``learned:<name>`` (trained by
    ``qos judge train`` into ``<warehouse>/judges/``); ``ensemble:<majority|mean>:<spec>+<spec>[+...]``;
    ``human`` (the labels recorded with ingested responses, ``qos ingest --labels human``).
    ``paths`` (default: the project's) locate the assets (rubric, model registry) and the warehouse.
    """
    if judge_id == DEFAULT:
        return get_judge(DEFAULT_SPEC, paths)
    if judge_id in ("rules", RulesJudge.judge_id):
        return RulesJudge()
    if judge_id == HUMAN_JUDGE:
        return RecordedLabels()
    kind, _, rest = judge_id.partition(":")
    if kind in ("llm", "learned", "ensemble") and rest:
        return _BUILDERS[kind](rest, paths or Paths.resolve())
    raise ValueError(
        f"unknown judge {judge_id!r}; available: default (= {DEFAULT_SPEC}), rules ({RulesJudge.judge_id}), "
        "llm:<model key>, "
        "learned:<name>, ensemble:<majority|mean>:<judge>+<judge>, and human (labels recorded with outputs "
        "ingested by `qos ingest --labels human`)"
    )


def _llm(model: str, paths: Paths) -> Judge:
    spec = resolve(model, paths)
    # building one is cheap: its model is loaded once per process (generation.models.loaded)
    return LLMJudge(spec.path, spec.key, spec.version, load_rubric(paths.assets))


def _learned(name: str, paths: Paths) -> Judge:
    return load_learned(name, paths.warehouse)


def _ensemble(rest: str, paths: Paths) -> Judge:
    method, _, members = rest.partition(":")
    if not members:
        raise ValueError(f"ensemble spec 'ensemble:{rest}' needs members: ensemble:majority:rules+learned:NAME")
    return EnsembleJudge([get_judge(m, paths) for m in members.split("+")], method)


_BUILDERS = {"llm": _llm, "learned": _learned, "ensemble": _ensemble}


def judges_version(specs: list[str], paths: Paths) -> str:
    """16 hex of the configured judges' ids: changes whenever any judge's behaviour can (a rule edited, a
    rubric changed, a learned judge retrained). The data version of the ``judge_definitions`` source."""
    ids = sorted(get_judge(spec, paths).judge_id for spec in specs)
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
