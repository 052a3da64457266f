"""A non-editable install carries the SQL and the default assets, and keeps its data out of site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.paths import ASSETS, ROOT

CHECK = """
import pathlib, sys
from qos_pipeline import settings
from qos_pipeline.metrics.build import SQL_DIR
from qos_pipeline.prompts.design import load_design
pkg = pathlib.Path(settings.__file__).parent
assert pkg.is_relative_to(pathlib.Path(sys.argv[1])), pkg          # the unpacked wheel, not the checkout
assert settings.DEFAULT_ASSETS.is_relative_to(pkg), settings.DEFAULT_ASSETS
assert settings.Paths.resolve().warehouse == pathlib.Path.cwd() / "warehouse"
print(len(load_design("full", settings.DEFAULT_ASSETS).names), len(list(SQL_DIR.glob("*.sql"))))
"""


@pytest.mark.slow
def test_wheel_carries_sql_and_default_assets(tmp_path):
    # from a copy of the sources: setuptools' build/ folder in a checkout could carry files of older builds
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".dagster", "build", "warehouse", "*.egg-info", "__pycache__", ".pytest_cache"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("qos_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sql = {p.name for p in (ROOT / "qos_pipeline" / "metrics" / "sql").glob("*.sql")}
    assert sql and {f"qos_pipeline/metrics/sql/{n}" for n in sql} <= names
    assert {f"qos_pipeline/default_assets/{p.name}" for p in ASSETS.glob("*.yaml")} <= names
    modules = {n for n in names if n.endswith(".py")}
    assert modules == {str(p.relative_to(ROOT)) for p in (ROOT / "qos_pipeline").rglob("*.py")}  # nothing stale
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", CHECK, str(site)], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["56", str(len(sql))]  # 7 groups x 8 names; every SQL file
