"""Run config of the assets: what one run may set (the UI's launchpad, the CLI's flags, a sensor's request).

A field left empty takes, in order: the setting the partition was last materialized with (kept in its
staged file, so an automatic refresh keeps a partition's design and sampling), then ``AuditSettings``.
"""

from __future__ import annotations

import dagster as dg

from qos_pipeline.defs.resources import AuditSettings, optional
from qos_pipeline.generation.sampling import REQUESTED, RunSettings, SamplingConfig
from qos_pipeline.metrics.analysis import StatsSettings
from qos_pipeline.metrics.stats.cells import MEASURES
from qos_pipeline.metrics.stats.draws import RESAMPLES, SEED
from qos_pipeline.metrics.stats.multiplicity import METHODS


class PromptsConfig(dg.Config):
    """``design``: ``demo``, ``full`` or a pilot-format folder; empty: the group's current design (with
    ``keep_partition_settings``), else the settings'."""

    design: str | None = None
    keep_partition_settings: bool = True

    def effective(self, stored: dict, settings: AuditSettings) -> dict:
        """The run's settings: this config's, else the partition's stored ones (if kept), else the defaults."""
        stored = stored if self.keep_partition_settings else {}
        return {"design": self.design or stored.get("design") or settings.design}


class GenerationsConfig(dg.Config):
    """Samples per prompt, base seed, batch size, new-token budget, prompt formats (ids of
    assets/prompt_formats.yaml) and sampling (empty: the model's own: registry, then generation_config.json,
    then transformers'). Sampling is taken as a whole: set any of its fields and the others not set are the
    model's; a temperature, top_p or top_k turns sampling on unless ``do_sample`` says otherwise. ``compile``: static
    KV cache + torch.compile on CUDA (decoding speed only).
    ``decoder``: ``batched``, ``continuous`` or ``naive`` (empty: the generator resource's; see
    ``GeneratorResource``); rows are the same under ``batched`` and ``continuous``.
    ``keep_partition_settings``: empty fields take the partition's last settings (a refresh) or, when
    False, the defaults (what ``qos run`` does: its flags decide)."""

    samples: int | None = None
    seed: int | None = None
    batch_size: int | None = None
    max_new_tokens: int | None = None
    prompt_formats: list[str] | None = None
    do_sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    compile: bool = False
    decoder: str | None = None
    keep_partition_settings: bool = True

    def effective(self, stored: dict, settings: AuditSettings) -> RunSettings:
        """What decides the rows (kept with the partition): this config's fields, else the partition's stored
        settings (``keep_partition_settings``), else ``settings``."""
        kept = RunSettings.stored_fields(stored) if self.keep_partition_settings else {}
        mine = {k: getattr(self, k) for k in REQUESTED}
        if mine["do_sample"] is None and any(mine[k] is not None for k in ("temperature", "top_p", "top_k")):
            mine["do_sample"] = True  # a temperature asked for means sampling (greedy would ignore it)
        sampling = mine if any(v is not None for v in mine.values()) else kept.get("sampling", mine)
        budget = optional(self.max_new_tokens, kept.get("max_new_tokens", settings.max_new_tokens))
        return RunSettings(
            samples=optional(self.samples, kept.get("samples", settings.samples)),
            seed=optional(self.seed, kept.get("seed", settings.seed)),
            sampling=SamplingConfig(**sampling, max_new_tokens=budget),
            prompt_formats=tuple(self.prompt_formats or kept.get("prompt_formats") or settings.format_ids() or ()))


class JudgmentsConfig(dg.Config):
    """``judges``: judge specs (``rules``, ``llm:<model>``, ``learned:<name>``, ``ensemble:...``, ``human``);
    empty: the settings' judges. Judges not named keep their labels while the responses stay the same."""

    judges: list[str] | None = None


class MetricTablesConfig(dg.Config):
    """``reference_group``: the group disparities are measured against; empty: the settings', else
    groups.yaml's. ``bootstrap_resamples`` and ``bootstrap_seed``: of every cluster-bootstrap interval
    (stored with each table); ``p_adjust``: ``holm`` (family-wise error) or ``bh`` (false discovery rate),
    applied within each family; ``primary_measure``: the measure whose gaps vs the reference group form the
    primary family (``any_refusal``, ``refusal`` or ``harmful_refusal``; empty: the settings')."""

    reference_group: str | None = None
    bootstrap_resamples: int = RESAMPLES
    bootstrap_seed: int = SEED
    p_adjust: str = "holm"
    primary_measure: str | None = None

    def stats(self, settings: AuditSettings | None = None) -> StatsSettings:
        """The statistics settings, checked: a clear error for too few resamples or an unknown method or measure."""
        if self.bootstrap_resamples < 100:
            raise ValueError(f"bootstrap_resamples={self.bootstrap_resamples}: use at least 100 (1,000 is the default)")
        if self.p_adjust not in METHODS:
            raise ValueError(f"p_adjust={self.p_adjust!r}: use one of {METHODS}")
        primary = self.primary_measure or (settings.primary_measure if settings else None) or "any_refusal"
        if primary not in MEASURES:
            raise ValueError(f"primary_measure={primary!r}: use one of {sorted(MEASURES)}")
        return StatsSettings(self.bootstrap_resamples, self.bootstrap_seed, self.p_adjust, primary)


class ValidationConfig(dg.Config):
    """Human-labelled files (pilot CSV, or CSV/JSONL with prompt, response, label); empty: the settings'.
    ``limit`` > 0 judges a seeded random subset; ``judges`` empty: the settings'. ``outputs_of``: the model
    key whose outputs the files hold, stored with each validation (``outputs_model``); empty: unknown."""

    files: list[str] = []
    limit: int = 0
    seed: int = 0
    judges: list[str] | None = None
    outputs_of: str | None = None
