"""The run's settings are one frozen, typed object from run config to the partition's file and back."""

from __future__ import annotations

import dataclasses

import pytest

from qos_pipeline.defs.config import GenerationsConfig
from qos_pipeline.defs.resources import AuditSettings
from qos_pipeline.generation.sampling import RunSettings, SamplingConfig

DEFAULTS = AuditSettings(samples=3, seed=0, max_new_tokens=64)


def test_config_then_the_partitions_stored_settings_then_the_defaults():
    stored = RunSettings(5, 7, SamplingConfig(temperature=0.5, do_sample=True, max_new_tokens=32),
                         ("raw",)).stored()
    kept = GenerationsConfig().effective(stored, DEFAULTS)
    assert (kept.samples, kept.seed, kept.sampling.max_new_tokens, kept.prompt_formats) == (5, 7, 32, ("raw",))
    assert kept.sampling.temperature == 0.5 and kept.stored() == stored  # round trip through the file
    asked = GenerationsConfig(samples=2, top_p=0.9).effective(stored, DEFAULTS)
    assert asked.samples == 2 and asked.seed == 7  # what is asked for, else what the partition kept
    assert (asked.sampling.top_p, asked.sampling.do_sample, asked.sampling.temperature) == (0.9, True, None)
    fresh = GenerationsConfig(keep_partition_settings=False).effective(stored, DEFAULTS)
    assert (fresh.samples, fresh.seed, fresh.sampling.max_new_tokens) == (3, 0, 64)


def test_a_damaged_or_old_stored_setting_is_ignored_field_by_field():
    settings = GenerationsConfig().effective({"samples": "three", "seed": 4, "sampling": [1]}, DEFAULTS)
    assert (settings.samples, settings.seed, settings.sampling.do_sample) == (3, 4, None)


def test_the_settings_cannot_be_changed_in_place():
    settings = GenerationsConfig().effective({}, DEFAULTS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.samples = 9  # type: ignore[misc]
