"""Keys, content hashes and timestamps that every stored row carries.

Pure: no dagster, no torch. Keys travel into file names, Dagster partition keys and SQL, so they are
checked against one safe alphabet here; hashes are hex digests of canonical bytes, so the same content
gives the same id on every machine.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import cast

import pandas as pd

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_key(value: str, what: str) -> str:
    """Partition keys travel into file names, Dagster keys and SQL: allow only a safe alphabet."""
    if not isinstance(value, str) or not _KEY.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid key: use 1-64 characters of lowercase a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit (e.g. 'llama-2-7b-chat')"
        )
    return value


def slugify(name: str) -> str:
    """A safe key from a free-form name (a folder, a file): lowercase ``[a-z0-9._-]``, at most 64 chars."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-._")[:64].strip("-._")
    return slug or "model"


def generation_id(row_key: str, response: str) -> str:
    """Id of one generated (or recorded) row: 16 hex of the sha256 of what produced it (model key and cache
    key, or a recorded file's key, version, format, prompt and sample) and the response itself. A judgment carries the
    id of the row it judged, so a label is never joined to a response it did not see."""
    return hashlib.sha256(f"{row_key}\x1f{response}".encode()).hexdigest()[:16]


def utc_now() -> pd.Timestamp:
    """Now, as a UTC timestamp."""
    return pd.Timestamp(datetime.now(UTC))


def code_digest(*modules: ModuleType) -> str:
    """8 hex of the sha256 of the modules' source files: goes into the id of whatever those modules decide
    (a judge's labels), so editing any line of them gives a new id and stored results are never reused
    across the edit. Comments count too: a conservative id only costs a re-run."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(cast(str, module.__file__)).read_bytes() + b"\0")
    return digest.hexdigest()[:8]
