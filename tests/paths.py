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
