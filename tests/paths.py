"""Locations shared by tests: the project's assets and the pilot data beside the repository."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
PILOT_DIR = ROOT.parent / "shared" / "data" / "pilot"
PILOT_CSV = PILOT_DIR / "df_annotated_llama13.csv"


def need_pilot() -> Path:
    if not PILOT_CSV.is_file():
        pytest.skip(f"pilot data not found at {PILOT_DIR} (it lives in shared/data/pilot beside the repository)")
    return PILOT_CSV


def load_script(relative: str):
    """Import a script of the repository (scripts/, benchmarks/) as a module, registered under its stem."""
    import importlib.util
    import sys

    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
