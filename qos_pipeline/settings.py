"""Where things live and what an audit run uses, read from ``QOS_*`` environment variables.

Pure: no dagster import. The Dagster resources in ``defs/resources.py`` wrap these values.
"""

from __future__ import annotations

import os
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


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Paths:
    """The project's folders. ``warehouse`` holds the DuckDB file and the staged Parquet partitions."""

    assets: Path
    warehouse: Path
    model_cache: Path

    @property
    def db(self) -> Path:
        return self.warehouse / "qos.duckdb"

    @property
    def staging(self) -> Path:
        return self.warehouse / "staging"


def project_paths() -> Paths:
    """Paths from ``QOS_ASSETS``, ``QOS_WAREHOUSE`` and ``QOS_MODEL_CACHE``, defaulting to the project's."""
    warehouse = _env_path("QOS_WAREHOUSE", PROJECT_ROOT / "warehouse")
    return Paths(
        assets=_env_path("QOS_ASSETS", DEFAULT_ASSETS),
        warehouse=warehouse,
        model_cache=_env_path("QOS_MODEL_CACHE", PROJECT_ROOT / "warehouse" / "models"),
    )


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


def env_str(var: str, default: str) -> str:
    return os.environ.get(var) or default


def env_int(var: str, default: int) -> int:
    raw = os.environ.get(var)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {var}={raw!r} must be an integer") from None
