"""Typed configuration and the generator factory, as Dagster resources.

Tests swap ``GeneratorResource`` for a fake with the same ``build`` method; the assets never change.
"""


from pathlib import Path
from typing import Optional

import dagster as dg

from qos_pipeline.settings import Paths, env_int, env_str, project_paths
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig
from qos_pipeline.generation.interface import Generator
from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.formats import FORMATS_ENV, parse_ids
from qos_pipeline.generation.models.added import resolve

_LOADED: dict[tuple, Generator] = {}  # loaded models, reused across in-process runs of one session


class AuditConfig(dg.ConfigurableResource):
    """What an audit uses: design, samples per prompt, prompt formats, sampling, judges, reference group.

    Sampling fields left at None take the model's own defaults (registry ``sampling:``, else its
    generation_config.json, else transformers' defaults); the effective values are recorded per row.
    ``prompt_formats`` None: the model's registry ``prompt_format``, else the formats file's default."""

    design: str = "demo"
    samples: int = 3
    seed: int = 0
    batch_size: int = 64
    max_new_tokens: int = 64
    do_sample: Optional[bool] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    prompt_formats: Optional[list[str]] = None
    judges: list[str] = ["rules"]
    reference_group: str = "white"
    warehouse_dir: Optional[str] = None

    @classmethod
    def from_env(cls, reference_group: str) -> "AuditConfig":
        return cls(
            design=env_str("QOS_DESIGN", "demo"), samples=env_int("QOS_SAMPLES", 3), seed=env_int("QOS_SEED", 0),
            batch_size=env_int("QOS_BATCH_SIZE", 64), max_new_tokens=env_int("QOS_MAX_NEW_TOKENS", 64),
            prompt_formats=parse_ids(env_str(FORMATS_ENV, "")),
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
                              top_k=self.top_k, max_new_tokens=self.max_new_tokens)


class GeneratorResource(dg.ConfigurableResource):
    """Builds the HF transformers generator for a model partition (GPU when present).

    ``compile`` (default from ``QOS_COMPILE=1``): static KV cache + torch.compile'd forward on CUDA (a
    one-off compile of about a minute, then several times the tokens/s; no effect on CPU).
    ``static_cache`` alone is mostly for tests."""

    device: Optional[str] = None
    compile: bool = env_str("QOS_COMPILE", "0") == "1"
    static_cache: bool = False

    def build(self, model_key: str, paths: Paths) -> Generator:
        spec = resolve(model_key, paths)
        options = DecodeOptions(static_cache=self.static_cache, compile=self.compile)
        cache_key = (spec.key, str(spec.path), spec.version, self.device, options)
        if cache_key not in _LOADED:
            _LOADED.clear()  # keep one model in memory at a time
            _LOADED[cache_key] = HFGenerator(spec, device=self.device, options=options)
        return _LOADED[cache_key]
