"""Dagster resources: where things live (``Storage``), the defaults of every audit run (``AuditSettings``),
the generator factory, the checkpoint watch, and the checkpoint regression gate and its alerts.

Every field can come from a ``QOS_*`` variable: ``from_env`` sets it to ``dg.EnvVar`` (Dagster reads the
value when a run or a tick starts, never at import), or, for the command line, to the value now. Dagster's
EnvVar has no default, so a variable that is unset when the definitions load leaves the field at its
default; that presence test is the one thing read at load time.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.interface import Generator
from qos_pipeline.generation.models.source import ModelSource, resolve_source
from qos_pipeline.generation.sampling import DecodeOptions
from qos_pipeline.metrics.gate import GateSettings
from qos_pipeline.prompts.design import load_groups
from qos_pipeline.settings import Paths


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class Storage(dg.ConfigurableResource):
    """Where the pipeline reads its source data (``assets_dir``: groups, names, templates, designs, model
    registry, rubric) and writes what it makes (``warehouse_dir``: staged partitions and qos.duckdb;
    ``model_cache_dir``: the converted embedded model). Empty: the project's folders."""

    assets_dir: str = ""
    warehouse_dir: str = ""
    model_cache_dir: str = ""

    def paths(self) -> Paths:
        """The resolved folders (empty fields: the project's)."""
        return Paths.resolve(self.assets_dir or None, self.warehouse_dir or None, self.model_cache_dir or None)


class AuditSettings(dg.ConfigurableResource):
    """The defaults of every audit run: what sensors and automation launch, and what a run gets when its own
    config (the UI's launchpad, the CLI's flags) leaves a field empty. A partition that was materialized
    before keeps the design and sampling settings it was made with (see ``defs/config.py``).

    ``prompt_formats``, ``judges``: comma-separated ids; ``reference_group``: empty = groups.yaml's;
    ``validation_files``: human-labelled files for ``judge_validations``, separated by ``os.pathsep``;
    ``primary_measure``: the measure of the primary family of group gaps (``any_refusal``, ``refusal`` or
    ``harmful_refusal``), fixed before the data are seen."""

    design: str = "demo"
    samples: int = 3
    seed: int = 0
    batch_size: int = 64
    max_new_tokens: int = 64
    prompt_formats: str = ""
    judges: str = "default"  # the recommended offline judge (judging/specs.py DEFAULT_SPEC)
    reference_group: str = ""
    validation_files: str = ""
    primary_measure: str = "any_refusal"

    def format_ids(self) -> list[str] | None:
        """The prompt-format ids, or None for the formats file's default."""
        return _ids(self.prompt_formats) or None

    def judge_specs(self) -> list[str]:
        """The judge specs (``default`` when none is set)."""
        return _ids(self.judges) or ["default"]

    def reference(self, paths: Paths) -> str:
        """The reference group: the configured one, else the one of ``groups.yaml``."""
        return self.reference_group or load_groups(paths.assets)[1]

    def files(self) -> list[str]:
        """The human-labelled files for ``judge_validations``."""
        return [f for f in self.validation_files.split(os.pathsep) if f.strip()]


class GeneratorResource(dg.ConfigurableResource):
    """Builds the Hugging Face transformers generator of a model partition (GPU when present).
    ``device``: empty = CUDA if available, else CPU. ``static_cache``: a static KV cache without compiling
    (tests); a run's ``compile`` config adds the compiled forward on CUDA. ``decoder``: ``batched``,
    ``continuous`` (slots refilled as rows end: long audits on a GPU) or ``naive`` (a baseline, not cached);
    a run's ``decoder`` config overrides it. ``attention``: the continuous decoder's, ``dense`` or ``flex``
    (see ``qos_pipeline/generation/continuous.py``)."""

    device: str = ""
    static_cache: bool = False
    decoder: str = "batched"
    attention: str = "dense"

    def source(self, model_key: str, paths: Paths) -> ModelSource:
        """What the partition's model key names, resolved once for the partition's run (``generations``)."""
        return resolve_source(model_key, paths)

    def build(self, source: ModelSource, compile: bool = False, decoder: str | None = None) -> Generator:
        """The generator of a resolved source (a key of recorded outputs has none: ModelError)."""
        options = DecodeOptions(static_cache=self.static_cache, compile=compile, decoder=decoder or self.decoder,
                                attention=self.attention)
        # cheap: the model itself is loaded once per process (qos_pipeline.generation.models.loaded)
        return HFGenerator(source.generating(), device=self.device or None, options=options)


class CheckpointWatch(dg.ConfigurableResource):
    """What the checkpoint sensor watches: ``dirs`` (folders separated by ``os.pathsep``), whose immediate
    sub-folders are checkpoints; ``marker``: a file that marks a checkpoint complete at once."""

    dirs: str = ""
    marker: str = ".complete"

    def roots(self) -> list[Path]:
        """The watched folders, resolved."""
        return [Path(p).expanduser().resolve() for p in self.dirs.split(os.pathsep) if p.strip()]


class RegressionGate(dg.ConfigurableResource):
    """The checkpoint regression gate (asset check ``metric_tables_checkpoint_regression``, ``qos trend``):
    the newest checkpoint of a family fails when a primary gap grew against the previous checkpoint with an
    adjusted paired p-value below ``level``, or is larger than ``ceiling`` (a share, 0.10 = 10 points; empty
    or 0: none). ``severity``: ``warn`` (default) or ``error``, how a failure shows in the UI; the build is
    published either way. Numbers as text: a ``dg.EnvVar`` can only hold text or an integer."""

    level: str = "0.05"
    ceiling: str = ""
    severity: str = "warn"

    def settings(self) -> GateSettings:
        """The gate's level and ceiling as numbers; a clear error naming the variables when one is not a number."""
        try:
            return GateSettings(float(self.level or 0.05), float(self.ceiling or 0))
        except ValueError as exc:
            raise ValueError(f"regression gate (QOS_GATE_LEVEL={self.level!r}, QOS_GATE_CEILING={self.ceiling!r}): "
                             f"{exc}") from None

    def check_severity(self) -> dg.AssetCheckSeverity:
        """The severity of a failed gate check in the UI."""
        if self.severity.lower() not in ("warn", "error"):
            raise ValueError(f"QOS_GATE_SEVERITY={self.severity!r}: use warn or error")
        return dg.AssetCheckSeverity.ERROR if self.severity.lower() == "error" else dg.AssetCheckSeverity.WARN


class Alerts(dg.ConfigurableResource):
    """Where the regression gate's verdict goes, without watching the UI (``regression_alert_sensor``):
    ``command`` (an argv list: JSON ``["notify", "--urgent"]`` or words split like a shell would, never run
    by a shell; the verdict is its standard input) and/or ``file`` (one JSON line appended per verdict).
    ``only_failures``: ``true`` to be told of failed verdicts only. Empty: no alert."""

    command: str = ""
    file: str = ""
    only_failures: str = "false"

    def argv(self) -> list[str]:
        """The alert command as an argv list (empty: none); a clear error when it cannot be parsed."""
        text = self.command.strip()
        if not text:
            return []
        try:
            argv = json.loads(text) if text.startswith("[") else shlex.split(text)
        except ValueError as exc:
            raise ValueError(f"QOS_ALERT_COMMAND={text!r} is neither a JSON list nor shell words ({exc})") from None
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"QOS_ALERT_COMMAND={text!r}: give the program and its arguments, e.g. "
                             '["/usr/local/bin/notify", "--channel", "safety"]')
        return argv

    def failures_only(self) -> bool:
        """Whether only failed verdicts are sent."""
        return self.only_failures.strip().lower() in ("1", "true", "yes")


ENV = {
    Storage: {"assets_dir": "QOS_ASSETS", "warehouse_dir": "QOS_WAREHOUSE", "model_cache_dir": "QOS_MODEL_CACHE"},
    AuditSettings: {"design": "QOS_DESIGN", "samples": "QOS_SAMPLES", "seed": "QOS_SEED",
                    "batch_size": "QOS_BATCH_SIZE", "max_new_tokens": "QOS_MAX_NEW_TOKENS",
                    "prompt_formats": "QOS_PROMPT_FORMATS", "judges": "QOS_JUDGES",
                    "reference_group": "QOS_REFERENCE_GROUP", "validation_files": "QOS_VALIDATION_FILES",
                    "primary_measure": "QOS_PRIMARY_MEASURE"},
    CheckpointWatch: {"dirs": "QOS_CHECKPOINT_DIRS", "marker": "QOS_CHECKPOINT_MARKER"},
    GeneratorResource: {"decoder": "QOS_DECODER", "attention": "QOS_ATTENTION"},
    RegressionGate: {"level": "QOS_GATE_LEVEL", "ceiling": "QOS_GATE_CEILING", "severity": "QOS_GATE_SEVERITY"},
    Alerts: {"command": "QOS_ALERT_COMMAND", "file": "QOS_ALERT_FILE", "only_failures": "QOS_ALERT_ONLY_FAILURES"},
}
"""Which ``QOS_*`` variable sets which field of which resource."""


R = TypeVar("R", bound=dg.ConfigurableResource)


def from_env(cls: type[R], deferred: bool = True, **fields: Any) -> R:
    """``cls`` with each field whose variable is set taken from it: as ``dg.EnvVar`` (``deferred``: read
    when a run starts) or as its value now (the command line, which needs paths before any run).
    ``fields`` win over the environment."""
    values: dict[str, Any] = {}
    for field, var in ENV[cls].items():
        raw = os.environ.get(var)
        if not raw:
            continue
        numeric = cls.model_fields[field].annotation in (int, "int")
        if deferred:
            values[field] = dg.EnvVar.int(var) if numeric else dg.EnvVar(var)
        else:
            try:
                values[field] = int(raw) if numeric else raw
            except ValueError:
                raise ValueError(f"environment variable {var}={raw!r} must be an integer") from None
    return cls(**{**values, **fields})


def optional(value: Any | None, fallback: Any) -> Any:
    """A run's config value when given, else ``fallback``."""
    return fallback if value is None else value
