"""A model key resolved once: ``ModelSource``, what a ``model`` partition key names, as every user of the key
receives it (``qos run``, ``qos ingest``, the checkpoint sensor, the ``generations`` asset and its generator).

``resolve_source`` is the one place a key (or a checkpoint folder) is turned into a source: it reads
``assets/models.yaml`` and ``<warehouse>/models.added.yaml``, checks the folder and hashes its weights.
It remembers what it resolved in this process while the files it read are unchanged (their size, mtime,
ctime and inode), so a command that registers a folder and then runs its partitions in process resolves
it once, not once per partition; a checkpoint overwritten in place, an edited registry or a re-ingested
file is resolved again. ``register`` files a folder under its key (and remembers the source under it).
Pure: no torch, no dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from qos_pipeline.generation.models import lineage
from qos_pipeline.generation.models.added import (
    RecordedSource,
    entry,
    recorded_source,
    save_entry,
)
from qos_pipeline.generation.models.checkpoints import signature
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import (
    REGISTRY_FILE,
    ModelSpec,
    load_registry,
    resolve_model,
)
from qos_pipeline.provenance import check_key
from qos_pipeline.settings import Paths

SourceKind = Literal["registry", "folder", "recorded"]
"""An entry of ``assets/models.yaml``; a checkpoint folder (``qos run --model FOLDER``, the sensor); a file of
outputs recorded elsewhere (``qos ingest``)."""


@dataclass(frozen=True)
class ModelSource:
    """What a model key names: a model to generate with (``spec``: folder, content version, registry
    settings) or a file of recorded outputs (``recorded``), never both."""

    key: str
    kind: SourceKind
    spec: ModelSpec | None = None
    recorded: RecordedSource | None = None

    def __post_init__(self) -> None:
        if (self.spec is None) == (self.recorded is None) or (self.kind == "recorded") != (self.recorded is not None):
            raise ValueError(f"model source {self.key!r}: a {self.kind} source holds a model or a recorded file")

    @property
    def _outputs(self) -> RecordedSource:
        assert self.recorded is not None  # __post_init__: no model, so a recorded file
        return self.recorded

    @classmethod
    def checkpoint(cls, key: str, folder: Path, version: str) -> ModelSource:
        """A checkpoint folder already checked and hashed (the sensor's scan): nothing is read again."""
        return cls(key, "folder", spec=ModelSpec(key, folder, version))

    @classmethod
    def outputs(cls, found: RecordedSource) -> ModelSource:
        """A file of recorded outputs just registered (``qos ingest``)."""
        return cls(found.key, "recorded", recorded=found)

    @property
    def path(self) -> Path:
        """The checkpoint folder, or the recorded file."""
        return self.spec.path if self.spec is not None else self._outputs.file

    @property
    def version(self) -> str:
        """The content version: the weights' hash (16 hex), or ``recorded-`` + the file's (read when asked:
        a recorded file that is gone is said when its rows are read)."""
        return self.spec.version if self.spec is not None else self._outputs.version

    def generating(self) -> ModelSpec:
        """The model this key generates with; a key of recorded outputs has none."""
        if self.spec is None:
            raise ModelError(f"model key {self.key!r} holds outputs recorded from {self._outputs.file} (qos ingest), "
                             "so it cannot generate; audit the model under another key")
        return self.spec

    def lineage(self, family: str, now: datetime | None = None) -> lineage.Lineage:
        """This checkpoint's place in ``family`` (its step read from the folder), to ``lineage.record``."""
        return lineage.describe(self.key, self.path, family, self.version, now)


_RESOLVED: dict[tuple, tuple[tuple, ModelSource]] = {}
"""key or folder, folders, convert -> (what the answer was read from, the source); see ``_stamp``."""
_KEEP = 64


def _identity(file: Path) -> tuple | None:
    try:
        st = file.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _stamp(asked: str, paths: Paths, found: ModelSource) -> tuple:
    """What the answer for ``asked`` was read from: both YAML files, the folder a path names (a link may be
    re-pointed) and every file of the source's folder (or its recorded file)."""
    where = Path(asked).expanduser()
    content = _identity(found.path) if found.kind == "recorded" else _folder(found.path)
    return (_identity(paths.assets / REGISTRY_FILE), _identity(paths.warehouse / "models.added.yaml"),
            str(where.resolve()) if where.exists() else None, content)


def _folder(folder: Path) -> str | None:
    try:
        return signature(folder)
    except OSError:  # gone: resolve again, which says so
        return None


def _remember(asked: str, paths: Paths, convert: bool, found: ModelSource) -> None:
    if len(_RESOLVED) >= _KEEP:
        _RESOLVED.pop(next(iter(_RESOLVED)))
    _RESOLVED[(asked, paths, convert)] = (_stamp(asked, paths, found), found)


def resolve_source(key_or_path: str, paths: Paths, convert: bool = True) -> ModelSource:
    """What ``key_or_path`` names: a key of ``models.added.yaml`` (folder or recorded file), of the registry, or
    a checkpoint folder (keyed by its slug). ``convert`` False: the embedded model's version without converting
    it. Raises ModelError naming the key and what to do."""
    known = _RESOLVED.get((key_or_path, paths, convert))
    if known is not None and known[0] == _stamp(key_or_path, paths, known[1]):
        return known[1]
    found, lasting = _resolve(key_or_path, paths, convert)
    if lasting:
        _remember(key_or_path, paths, convert, found)
    return found


def _resolve(key_or_path: str, paths: Paths, convert: bool) -> tuple[ModelSource, bool]:
    """The source, and whether it lasts while its files do (not a hub entry: the snapshot it names changes
    when the local Hugging Face cache is updated, so it is looked up every time)."""
    added = entry(key_or_path, paths)
    if added is None:
        models = load_registry(paths.assets)["models"]
        spec = resolve_model(key_or_path, paths.assets, paths.model_cache, convert, models)
        settings = models.get(key_or_path)
        if settings is None:
            return ModelSource(spec.key, "folder", spec=spec), True
        return ModelSource(spec.key, "registry", spec=spec), not (settings.get("hub") and not settings.get("path"))
    if "recorded" in added:
        return ModelSource(key_or_path, "recorded", recorded=recorded_source(key_or_path, added)), True
    # A folder added at run time has no registry settings: keep its key, decide the rest from the checkpoint.
    spec = resolve_model(added["folder"], paths.assets, paths.model_cache)
    return ModelSource(key_or_path, "folder", spec=replace(spec, key=key_or_path)), True


def resolve(key: str, paths: Paths) -> ModelSpec:
    """The model a partition key generates with (a judge's model too); a key of recorded outputs has none."""
    return resolve_source(key, paths).generating()


def register(source: ModelSource, paths: Paths) -> ModelSource:
    """Remember a checkpoint folder under its key in ``models.added.yaml`` (a registry key needs nothing).
    Refuses a key of recorded outputs, a folder whose key the registry or another folder uses. The caller
    holds the warehouse's writer lock."""
    spec = source.generating()
    if source.kind == "registry":
        return source
    check_key(source.key, "model key")
    if source.key in load_registry(paths.assets)["models"]:
        raise ModelError(f"folder {spec.path} would take the key {source.key!r}, which assets/models.yaml "
                         "already uses; rename the folder or add it to the registry under another key")
    taken = entry(source.key, paths)
    if taken is not None and ("folder" not in taken or Path(taken["folder"]).resolve() != spec.path):
        raise ModelError(f"model key {source.key!r} already names {taken.get('folder') or taken.get('recorded')}; "
                         f"rename the folder {spec.path}")
    if taken is None:
        save_entry(source.key, {"folder": str(spec.path)}, paths)
    _remember(source.key, paths, True, source)  # the runs that follow ask by key: no second resolve
    return source
