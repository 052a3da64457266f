"""What the UI says about the definitions matches what they do and what the READMEs say: every check
has the README's description, the sensors are the documented ones (no Dagster default sensor beside
them), and the warehouse asset's description names every table a build writes."""

from __future__ import annotations

import re

import dagster as dg

from qos_pipeline.definitions import defs
from qos_pipeline.tables.checks import descriptions
from qos_pipeline.metrics import declared as _metric_tables  # noqa: F401  (declares the metric tables)
from qos_pipeline.tables import declared
from tests.paths import ROOT

READMES = (ROOT / "README.md").read_text() + (ROOT / "warehouse" / "README.md").read_text()


def test_every_check_has_its_description_and_is_documented():
    specs = [spec for asset in defs.resolve_asset_graph().assets_defs for spec in asset.check_specs]
    assert {s.name for s in specs} == set(descriptions())  # no check without a description, none stale
    for spec in specs:
        assert spec.description == descriptions()[spec.name]
        assert f"`{spec.name}`" in READMES, f"{spec.name} is in neither README.md nor warehouse/README.md"


def test_partitioned_assets_have_partitioned_checks():
    # a check spec without the asset's partitions records evaluations with no partition: the UI shows "-"
    for asset in defs.resolve_asset_graph().assets_defs:
        for spec in asset.check_specs:
            assert spec.partitions_def == asset.partitions_def, spec.name


def test_the_sensors_are_the_documented_ones():
    repository = defs.get_repository_def()
    sensors = {s.name: s for s in repository.sensor_defs}
    # the README's four: checkpoints, declarative automation, the repair of runs whose process died, and the
    # regression gate's alerts
    assert set(sensors) == {"checkpoint_sensor", "audit_automation", "dead_runs_sensor", "regression_alert_sensor"}
    targeted = sensors["audit_automation"].asset_selection.resolve(repository.asset_graph)
    sources = {dg.AssetKey(k) for k in ("prompt_designs", "model_sources", "judge_definitions")}
    assert sources <= targeted  # observed by the documented sensor, not by a default one


def _written_tables() -> set[str]:
    """Every declared table and view but the taxonomy (what the build writes)."""
    return {t.name for t in declared() if t.kind != "taxonomy"}


def test_metric_tables_description_names_every_table():
    text = defs.resolve_assets_def("metric_tables").descriptions_by_key[dg.AssetKey("metric_tables")]
    named = set(re.findall(r"``(\w+)``", text))
    for stem, options in re.findall(r"``(\w+)\{([\w,]+)\}``", text):  # label_rates_{model,group,...}
        named |= {stem + option for option in options.split(",")}
    tables = _written_tables()
    assert len(tables) > 20
    assert tables <= named, f"the metric_tables description misses {sorted(tables - named)}"
    assert "Wilson 95% CIs" not in text


def test_staged_assets_show_their_declared_columns():
    from qos_pipeline.tables import table

    for asset in ("prompts", "generations", "judgments", "judge_validations"):
        definition = defs.resolve_assets_def(asset)
        schema = definition.metadata_by_key[definition.key]["dagster/column_schema"]
        shown = [(c.name, c.constraints.nullable) for c in schema.columns]
        assert shown == [(c.name, not c.required) for c in table(asset).columns]
        assert all(c.description for c in schema.columns)  # every column with its note
