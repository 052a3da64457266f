"""Pending ingests: a model key's previous staged rows stay the ones published until a new ingest of the
key is complete, so an ingest is published whole or not at all.

``qos ingest`` runs one Dagster run per group; killed half way, it would leave some groups new and others
old (or gone, with ``--replace``), and the next build, anyone's, would publish that mix. So an ingest of
key K first writes a journal, ``staging/.pending/K/journal.json``, and moves K's staged folders
(``generations``, ``judgments``, ``toxicity``) to ``staging/.pending/K/old/``. While the journal exists,
builds load K's rows from there (the previous version; nothing for a new key), never what the ingest has
written so far. Deleting the journal is the commit: from then on K's new folders are loaded, and the old
copy is removed. An interrupted ingest is resumed by running it again (same file and key), or dropped
(``qos doctor --drop-ingest K``: the old folders move back). Every step can itself be interrupted and
redone. Pure: no dagster, no duckdb.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from qos_pipeline.processes import process_gone
from qos_pipeline.provenance import check_key

PENDING = ".pending"
JOURNAL = "journal.json"
MODEL_TABLES = ("generations", "judgments", "toxicity")
"""The staged tables with a ``model=`` folder: what an ingest of a key replaces."""


@dataclass(frozen=True)
class Pending:
    """An ingest of ``model`` not committed yet: its journal (``info``) and its folder."""

    model: str
    folder: Path
    info: dict

    @property
    def old(self) -> Path:
        """The folder keeping the files the ingest replaces until it commits."""
        return self.folder / "old"

    @property
    def running(self) -> bool:
        """Its process is still at work (another command must then leave it alone)."""
        return not process_gone(int(self.info.get("pid", 0)), float(self.info.get("started_at", 0)))

    def describe(self) -> str:
        """One line for the user: which file, key and process, and whether it still runs."""
        what = (f"an ingest of {self.info.get('file')} into model key {self.model!r} (pid {self.info.get('pid')}, "
                f"started {self.info.get('started', '?')})")
        if self.running:
            return f"{what} is in progress; until it finishes the key's previous rows stay published"
        return (f"{what} was interrupted; the key's previous rows stay published until you resume it "
                f"(`{self.info.get('resume')}`) or drop it (`qos doctor --drop-ingest {self.model}`)")


def _folder(staging: Path, model: str) -> Path:
    return Path(staging) / PENDING / check_key(model, "model")


def _live(staging: Path, table: str, model: str) -> Path:
    return Path(staging) / table / f"model={model}"


def _write(pending: Pending, **changes) -> Pending:
    info = {**pending.info, **changes}
    tmp = pending.folder / f".{JOURNAL}.tmp"
    tmp.write_text(json.dumps(info, indent=1), encoding="utf-8")
    os.replace(tmp, pending.folder / JOURNAL)
    return Pending(pending.model, pending.folder, info)


def pending(staging: Path) -> dict[str, Pending]:
    """Every uncommitted ingest, by model key."""
    root = Path(staging) / PENDING
    found = {}
    for journal in sorted(root.glob(f"*/{JOURNAL}")) if root.is_dir() else []:
        info = json.loads(journal.read_text(encoding="utf-8"))
        found[journal.parent.name] = Pending(journal.parent.name, journal.parent, info)
    return found


def begin(staging: Path, model: str, info: dict) -> Pending:
    """Start an ingest of ``model``: write its journal (``info``: file, resume command, registration it
    replaces), then move the key's staged folders aside. An earlier uncommitted ingest of it is resumed:
    the moves finished, whatever it wrote removed."""
    current, carried = pending(staging).get(model), {}
    if current is not None and current.info.get("state") == "dropping":  # an interrupted drop: finish it first
        carried = {"previous": (drop(staging, model) or {}).get("previous")}
        current = None
    if current is None:
        folder = _folder(staging, model)
        if folder.exists():  # a committed ingest's old copy, not yet removed
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        moved = [t for t in MODEL_TABLES if _live(staging, t, model).is_dir()]
        current = _write(Pending(model, folder, {}), **info, **carried, moved=moved, state="moving", pid=os.getpid(),
                         started=time.strftime("%Y-%m-%d %H:%M:%S"), started_at=time.time())
    current = _write(current, pid=os.getpid(), started_at=time.time())
    for table in MODEL_TABLES:
        live, old = _live(staging, table, model), current.old / table / f"model={model}"
        if table in current.info["moved"] and not old.exists() and current.info["state"] == "moving":
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(live, old)
        elif live.exists():  # rows this ingest (or an interrupted one) wrote: not the previous version
            shutil.rmtree(live)
    return _write(current, state="running")


def commit(staging: Path, model: str) -> None:
    """The ingest of ``model`` is complete: its new rows become the ones loaded (the journal goes, which is
    the commit), then its previous rows are deleted."""
    folder = _folder(staging, model)
    (folder / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def drop(staging: Path, model: str) -> dict | None:
    """Undo the uncommitted ingest of ``model``: delete what it wrote, move the previous rows back. Returns
    its journal (whose ``previous`` is the registration to restore), or None when there was none."""
    current = pending(staging).get(model)
    if current is None:
        return None
    current = _write(current, state="dropping")
    for table in MODEL_TABLES:
        live, old = _live(staging, table, model), current.old / table / f"model={model}"
        if table in current.info["moved"]:
            if old.exists():
                if live.exists():
                    shutil.rmtree(live)
                os.replace(old, live)
        elif live.exists():
            shutil.rmtree(live)
    commit(staging, model)  # nothing left to keep: the journal and the folder go
    return current.info


def loaded_instead(staging: Path, table: str) -> dict[str, Path | None]:
    """For each model key with an uncommitted ingest: the folder whose ``table`` files a build loads instead
    of the key's live ones (its previous rows), or None (no previous rows of that table)."""
    out: dict[str, Path | None] = {}
    for model, item in pending(staging).items():
        old = item.old / table
        if (old / f"model={model}").exists():
            out[model] = old
        elif table in item.info.get("moved", []) and item.info.get("state") in ("moving", "dropping"):
            out[model] = Path(staging) / table  # not moved yet, or already moved back: the live files are old
        else:
            out[model] = None
    return out
