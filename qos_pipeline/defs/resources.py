"""Typed configuration and the generator factory, as Dagster resources.

Tests swap ``GeneratorResource`` for a fake with the same ``build`` method; the assets never change.
"""


from pathlib import Path
from typing import Optional

import dagster as dg

from qos_pipeline.config import Paths, env_int, env_str, project_paths
from qos_pipeline.generation import SYSTEM_PROMPT, Generator, HFGenerator, SamplingConfig
from qos_pipeline.registry import resolve

_LOADED: dict[tuple, Generator] = {}  # loaded models, reused across in-process runs of one session


class AuditConfig(dg.ConfigurableResource):
    """What an audit uses: design, samples per prompt, sampling, judges, reference group."""

    design: str = "demo"
    samples: int = 3
    seed: int = 0
    batch_size: int = 64
    max_new_tokens: int = 64
    do_sample: bool = True
    temperature: float = 0.6
    top_p: float = 0.9
    judges: list[str] = ["rules"]
    reference_group: str = "white"
    warehouse_dir: Optional[str] = None

    @classmethod
    def from_env(cls, reference_group: str) -> "AuditConfig":
        return cls(
            design=env_str("QOS_DESIGN", "demo"), samples=env_int("QOS_SAMPLES", 3), seed=env_int("QOS_SEED", 0),
            batch_size=env_int("QOS_BATCH_SIZE", 64), max_new_tokens=env_int("QOS_MAX_NEW_TOKENS", 64),
            judges=env_str("QOS_JUDGES", "rules").split(","),
            reference_group=env_str("QOS_REFERENCE_GROUP", reference_group),
        )

    def paths(self) -> Paths:
        paths = project_paths()
        if self.warehouse_dir:
            return Paths(paths.assets, Path(self.warehouse_dir).expanduser().resolve(), paths.model_cache)
        return paths

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(do_sample=self.do_sample, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.max_new_tokens)


class GeneratorResource(dg.ConfigurableResource):
    """Builds the HF transformers generator for a model partition (GPU when present)."""

    system_prompt: Optional[str] = SYSTEM_PROMPT
    device: Optional[str] = None

    def build(self, model_key: str, paths: Paths) -> Generator:
        spec = resolve(model_key, paths)
        cache_key = (spec.key, str(spec.path), spec.version, self.system_prompt, self.device)
        if cache_key not in _LOADED:
            _LOADED.clear()  # keep one model in memory at a time
            _LOADED[cache_key] = HFGenerator(spec, system_prompt=self.system_prompt, device=self.device)
        return _LOADED[cache_key]
