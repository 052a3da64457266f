"""A project of its own per test: warehouse and Dagster home in a temporary folder."""

import pytest


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("QOS_WAREHOUSE", str(tmp_path / "wh"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path
