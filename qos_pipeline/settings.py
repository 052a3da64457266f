"""Where things live: the project's folders (``Paths``) and the YAML reader for ``assets/``.

Pure: no dagster import, and no environment variable is read here. The ``QOS_*`` variables reach the code
through the Dagster resources of ``defs/resources.py`` (``dg.EnvVar``, read when a run starts) and the
command line, which builds the same resources; both hand a ``Paths`` to the stage code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
DEFAULT_ASSETS = (_PACKAGE / "default_assets").resolve()
"""The assets shipped with the package: a link to the checkout's ``assets/``, copied into wheels."""


def _project_root() -> Path:
    """The checkout holding this package (an editable install), else the working directory (an installed
    package: its data then goes to ``./warehouse``, never into site-packages)."""
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "assets").is_dir():
        return checkout
    return Path.cwd()


PROJECT_ROOT = _project_root()


@dataclass(frozen=True)
class Paths:
    """The project's folders. ``warehouse`` holds the DuckDB file and the staged Parquet partitions;
    ``model_cache`` the converted embedded model (shared by every warehouse of a machine)."""

    assets: Path
    warehouse: Path
    model_cache: Path

    @property
    def db(self) -> Path:
        """The warehouse database."""
        return self.warehouse / "qos.duckdb"

    @property
    def staging(self) -> Path:
        """The folder of staged partitions."""
        return self.warehouse / "staging"

    @classmethod
    def resolve(cls, assets: str | Path | None = None, warehouse: str | Path | None = None,
                model_cache: str | Path | None = None) -> Paths:
        """The given folders (``~`` expanded, made absolute), the project's defaults for the others."""
        def folder(value: str | Path | None, default: Path) -> Path:
            return Path(value).expanduser().resolve() if value else default

        return cls(assets=folder(assets, DEFAULT_ASSETS), warehouse=folder(warehouse, PROJECT_ROOT / "warehouse"),
                   model_cache=folder(model_cache, PROJECT_ROOT / "warehouse" / "models"))


def read_yaml_mapping(path: Path, error: type[Exception], fix: str = "fix the file") -> dict:
    """A YAML file whose top level is a mapping (empty file -> {}); any problem raises ``error`` naming
    the file, with ``fix`` saying what to do about invalid YAML."""
    import yaml

    if not path.is_file():
        raise error(f"{path} is missing; restore it from the repository or point QOS_ASSETS at a full assets folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML ({exc}); {fix}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path} must hold a mapping at the top level; it is malformed")
    return data
