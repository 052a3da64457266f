"""What is stale in the staged warehouse, for the nightly refresh schedules.

Pure: no dagster import. Staleness is decided from the data itself, not from run history, so it holds
whoever wrote a partition (`qos run`, the UI, a sensor, another host):
- prompts[g]: the staged prompts differ from the configured design's rendering (templates or names edited);
- generations[m|g]: generated from other prompts than the staged prompts[g], or from another content
  version of model m than its folder holds now;
- judgments[m|g]: a configured judge (its id carries its rubric version) has no file for the partition,
  or its file is older than the generations it labels;
- metric tables: the DuckDB file is missing or older than the newest staged file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from qos_pipeline.settings import Paths
from qos_pipeline.prompts.design import Design, render_prompts
from qos_pipeline.staging import partition_file


@dataclass(frozen=True)
class StalePartition:
    """A model x group partition to re-materialize; ``token`` names the inputs it will be rebuilt from
    (used in run keys, so the same inputs are never requested twice)."""

    model: str
    group: str
    reason: str
    token: str


def prompt_signature(df: pd.DataFrame) -> str:
    """12 hex of the set of (prompt_id, prompt_text): equal iff the same prompts, in any row order."""
    pairs = sorted(set(zip(df["prompt_id"].astype(str), df["prompt_text"].astype(str))))
    return hashlib.sha256(repr(pairs).encode()).hexdigest()[:12]


def _staged_signature(path: Path) -> str | None:
    if not path.is_file():
        return None
    return prompt_signature(pd.read_parquet(path, columns=["prompt_id", "prompt_text"]))


def stale_prompts(paths: Paths, design: Design, groups: list[str]) -> dict[str, str]:
    """Groups whose staged prompts are missing or differ from the design -> signature of the new prompts."""
    out = {}
    for group in groups:
        current = prompt_signature(render_prompts(design, group))
        if _staged_signature(partition_file(paths.staging, "prompts", group)) != current:
            out[group] = current
    return out


def staged_partitions(paths: Paths) -> list[tuple[str, str]]:
    """(model, group) of every staged generations file, sorted."""
    root = paths.staging / "generations"
    found = [(f.parent.parent.name.removeprefix("model="), f.parent.name.removeprefix("group="))
             for f in root.glob("model=*/group=*/data.parquet")]
    return sorted(found)


def stale_generations(paths: Paths, groups: list[str], version_of: Callable[[str], str | None]
                      ) -> list[StalePartition]:
    """Partitions whose generations no longer match their staged prompts or their model's version.

    Only groups whose prompts are current are looked at (``groups``): the others are re-rendered first.
    ``version_of`` returns a model key's current content version, or None when it cannot be loaded here
    (ingested outputs, a folder that is gone): such partitions are never regenerated.
    """
    out = []
    for model, group in staged_partitions(paths):
        if group not in groups:
            continue
        gens = pd.read_parquet(partition_file(paths.staging, "generations", group, model),
                               columns=["prompt_id", "prompt_text", "model_version", "source"])
        if gens.empty or not gens["source"].astype(str).str.startswith("generated").all():
            continue
        version = version_of(model)
        if version is None:
            continue
        prompts_sig = _staged_signature(partition_file(paths.staging, "prompts", group))
        token = f"{prompts_sig}:{version}"
        if prompt_signature(gens) != prompts_sig:
            out.append(StalePartition(model, group, "prompts changed", token))
        elif set(gens["model_version"].astype(str)) != {version}:
            out.append(StalePartition(model, group, "model version changed", token))
    return out


def stale_judgments(paths: Paths, judge_ids: list[str], skip: set[tuple[str, str]]) -> list[StalePartition]:
    """Partitions (not in ``skip``, which are regenerated anyway) that a configured judge has not labelled
    since their generations were written."""
    out = []
    for model, group in staged_partitions(paths):
        if (model, group) in skip:
            continue
        gens = partition_file(paths.staging, "generations", group, model)
        written = gens.stat().st_mtime_ns
        for judge_id in judge_ids:
            file = partition_file(paths.staging, "judgments", group, model, judge_id)
            if not file.is_file() or file.stat().st_mtime_ns < written:
                out.append(StalePartition(model, group, f"judge {judge_id} has not labelled these", f"{judge_id}:{written}"))
                break
    return out


def newest_staged(paths: Paths) -> int:
    """mtime (ns) of the newest staged Parquet file, 0 when nothing is staged."""
    return max((f.stat().st_mtime_ns for f in paths.staging.glob("**/*.parquet")), default=0)


def warehouse_stale(paths: Paths) -> bool:
    newest = newest_staged(paths)
    return newest > 0 and (not paths.db.is_file() or paths.db.stat().st_mtime_ns < newest)
