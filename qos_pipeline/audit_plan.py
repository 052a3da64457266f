"""Auditing one model, planned once for the three callers that start it: ``qos run``, ``qos ingest`` and the
checkpoint sensor.

The sequence: register the model's source (and a checkpoint's lineage: ``enroll``), add its ``model``
partition, make the prompts of the groups that need them, run one audit per model x group, then rebuild
the metric tables. ``plan`` decides which partitions, prompts and audit runs (with the run key and tags a
requested run carries); each caller executes the plan its way: the commands run it in their process
(``cli/plans.py``), the sensor requests it as runs (``defs/sensors.py``), after which declarative
automation rebuilds the tables. Pure: no dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qos_pipeline.generation.models import lineage
from qos_pipeline.generation.models.source import ModelSource, register
from qos_pipeline.settings import Paths


@dataclass(frozen=True)
class AuditRun:
    """One audit of a model x group partition (its generations, their checks and judgments)."""

    source: ModelSource
    group: str

    @property
    def run_key(self) -> str:
        """Names key, content version and group: a sensor never requests it twice, and a checkpoint replaced
        in place (a new version) gets new runs."""
        return f"audit:{self.source.key}@{self.source.version}:{self.group}"

    def tags(self) -> dict[str, str]:
        """What a requested run carries to say which checkpoint version it audits."""
        return {"qos/model_version": self.source.version, "qos/checkpoint": str(self.source.path)}


@dataclass(frozen=True)
class AuditPlan:
    """The model partitions to add, the groups whose prompts are made first, then the audit runs in order."""

    models: tuple[str, ...]
    prompts: tuple[str, ...]
    audits: tuple[AuditRun, ...]


def enroll(source: ModelSource, paths: Paths, family: str | None) -> lineage.Lineage | None:
    """Register ``source`` under its key and, with a ``family``, record it as a checkpoint of that family;
    returns what was recorded. The caller holds the warehouse's writer lock."""
    register(source, paths)
    return lineage.record(paths, source.lineage(family)) if family is not None else None


def family_of(folder: Path, family: str | None) -> str | None:
    """The family of a folder given to ``qos run --model``: ``--family``, else the folder it lies in when
    it states a training step; None (no checkpoint) otherwise: two unrelated models side by side in one
    folder are no training run."""
    if family is not None:
        return family
    return str(folder.resolve().parent) if folder.is_dir() and lineage.has_step(folder) else None


def plan(sources: list[ModelSource], groups: list[str], staged: set[str] | None = None) -> AuditPlan:
    """The audit of ``sources`` over ``groups``. ``staged``: the groups whose prompts exist, when the runs
    are requested and cannot wait for each other (a sensor): only their audits are planned, and the prompts
    of the others, whose audits a later plan makes; None: the prompts of every group are made again first
    and every audit follows (a command, running the plan in order). A source of recorded outputs brings
    its own prompts."""
    generated = any(s.kind != "recorded" for s in sources)
    prompts = [g for g in groups if generated and (staged is None or g not in staged)]
    audits = [AuditRun(s, g) for s in sources for g in groups
              if s.kind == "recorded" or staged is None or g in staged]
    return AuditPlan(tuple(dict.fromkeys(s.key for s in sources)), tuple(prompts), tuple(audits))
