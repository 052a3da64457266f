"""Checkpoint lineage: which training run (family) a checkpoint belongs to and where it stands in it (order).

A checkpoint found in a watched folder (the checkpoint sensor), or a folder given to ``qos run --model``,
carries
- a **step**: parsed from its folder name (``checkpoint-1200``, ``step_1200``, ``global_step1200``,
  ``ckpt-1200``, ``iter_1200``; the last such number in the name), else ``global_step`` of its
  ``trainer_state.json`` (what the Hugging Face Trainer writes), else none;
- the time it **appeared**: the first registration, or the mtime of its ``config.json`` when earlier (a
  sensor turned on over a folder of old checkpoints then orders them by when they were written, not by the
  tick that found them all at once);
- a **family**: the watched folder it was found in, or ``qos run --family``.
Checkpoints of a family are ordered by step, those without one after them by the time they appeared.

Kept in ``<warehouse>/models.lineage.yaml`` (key -> entry, beside ``models.added.yaml``), with the content
version it was read for; the warehouse build turns it into the table ``checkpoints``. Pure: no dagster.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import yaml

from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.provenance import check_key
from qos_pipeline.settings import Paths, read_yaml_mapping

FILE = "models.lineage.yaml"
_STEP = re.compile(r"(?<![a-z])(?:global[_-]?step|checkpoint|ckpt|step|iter(?:ation)?)[-_]?(\d+)", re.IGNORECASE)
ORDER_FROM = ("name", "trainer_state", "appeared")
"""Where a checkpoint's order comes from: its folder name's step, trainer_state.json's, or the time it appeared."""
COLUMNS = ["model_key", "model_version", "checkpoint_family", "step", "order_from", "appeared_at", "folder"]


@dataclass(frozen=True)
class Lineage:
    """One checkpoint's place: ``family``, ``step`` (None: ordered by ``appeared_at``, ISO 8601 UTC)."""

    key: str
    family: str
    step: int | None
    order_from: str
    appeared_at: str
    version: str
    folder: str


def step_from_name(name: str) -> int | None:
    """The training step a folder name states (the last match: ``run3-checkpoint-1200`` -> 1200), or None."""
    found = _STEP.findall(name)
    return int(found[-1]) if found else None


def step_from_trainer_state(folder: Path) -> int | None:
    """``global_step`` of ``trainer_state.json`` (Hugging Face Trainer), or None when absent or unreadable
    (a broken file only loses the order, never the checkpoint)."""
    try:
        step = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8")).get("global_step")
    except (OSError, ValueError, AttributeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def read_step(folder: Path) -> tuple[int | None, str]:
    """(step, where it came from): the folder name first, then trainer_state.json, else (None, appeared)."""
    step = step_from_name(folder.name)
    if step is not None:
        return step, "name"
    step = step_from_trainer_state(folder)
    return (step, "trainer_state") if step is not None else (None, "appeared")


def has_step(folder: Path) -> bool:
    """Whether the folder states a training step (by name or trainer_state.json): it is a checkpoint."""
    return read_step(folder)[0] is not None


def _appeared(folder: Path, now: datetime) -> datetime:
    try:
        written = datetime.fromtimestamp((folder / "config.json").stat().st_mtime, UTC)
    except OSError:
        return now
    return min(written, now)


def describe(key: str, folder: Path, family: str, version: str, now: datetime | None = None) -> Lineage:
    """The lineage of checkpoint ``folder`` registered under ``key`` in ``family``, read now."""
    if not family.strip():
        raise ModelError(f"checkpoint {folder}: its family is empty; give a name (qos run --family NAME)")
    step, order_from = read_step(folder)
    now = now or datetime.now(UTC)
    return Lineage(check_key(key, "model key"), family.strip(), step, order_from,
                   _appeared(folder, now).isoformat(), version, str(folder))


def _file(paths: Paths) -> Path:
    return paths.warehouse / FILE


def load(paths: Paths) -> dict[str, Lineage]:
    """Every recorded checkpoint's lineage by model key (empty when none was recorded)."""
    file = _file(paths)
    if not file.is_file():
        return {}
    data = read_yaml_mapping(file, ModelError, "fix it, or delete it and register the checkpoints again")
    out = {}
    for key, entry in data.items():
        try:
            found = Lineage(key=str(key), **entry)
            if not (found.step is None or isinstance(found.step, int)) or found.order_from not in ORDER_FROM:
                raise TypeError(f"step {found.step!r}, order_from {found.order_from!r}")
            datetime.fromisoformat(str(found.appeared_at))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{file}: the entry of {key!r} is malformed ({exc}); fix it or delete the entry "
                             "and register the checkpoint again") from None
        out[str(key)] = found
    return out


def record(paths: Paths, lineage: Lineage) -> Lineage:
    """Remember ``lineage`` under its key (the caller holds the warehouse's writer lock). A key seen before
    keeps the time it first appeared; its step, family and version are read again (a checkpoint overwritten
    in place is a new version, its trainer state may say another step). Returns what was stored."""
    entries = load(paths)
    earlier = entries.get(lineage.key)
    if earlier is not None and earlier.appeared_at < lineage.appeared_at:
        lineage = Lineage(**{**asdict(lineage), "appeared_at": earlier.appeared_at})
    entries[lineage.key] = lineage
    file = _file(paths)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    body = {k: {f: v for f, v in asdict(e).items() if f != "key"} for k, e in sorted(entries.items())}
    tmp.write_text(yaml.safe_dump(body, sort_keys=True), encoding="utf-8")
    os.replace(tmp, file)
    return lineage


def frame(paths: Paths) -> pd.DataFrame:
    """The recorded lineage as rows of the warehouse table ``checkpoints`` (without the order, which the
    build ranks within each family)."""
    rows = [{"model_key": e.key, "model_version": e.version, "checkpoint_family": e.family, "step": e.step,
             "order_from": e.order_from, "appeared_at": e.appeared_at, "folder": e.folder}
            for e in load(paths).values()]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"step": "Int64"})
