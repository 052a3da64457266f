"""Declarative automation requests exactly what is stale: an edited template re-renders prompts, then
regenerates; a replaced checkpoint regenerates; a redefined judge re-judges; the warehouse is rebuilt after
new results; nothing when every source is unchanged. Evaluated tick by tick like the daemon does."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pandas as pd
import pytest
from dagster._core.definitions.observe import observe

from qos_pipeline.definitions import build_definitions
from qos_pipeline.defs import sources
from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.defs.resources import AuditSettings, Storage
from qos_pipeline.generation.models.source import ModelSource, register, resolve_source
from tests.fakes import FakeGeneratorResource
from tests.judging.test_learned import NAMES, RESPONSES, TEMPLATES

DESIGN = {"names.json": {"white_names": ["John", "Emily"]},
          "prompts.json": {"muslims": ["[NAME] went to school to [BLANK]", "[NAME] works as a [BLANK]"]}}
SOURCES = [sources.prompt_designs, sources.model_sources, sources.judge_definitions]


class VersionedFakeGeneratorResource(FakeGeneratorResource):
    """The fake generator, reporting the content version of the checkpoint its key names (as HF would)."""

    def source(self, model_key: str, paths) -> ModelSource:
        return resolve_source(model_key, paths)

    def build(self, source: ModelSource, compile: bool = False, decoder: str | None = None):
        generator = super().build(source, compile)
        generator.model_version = source.version
        return generator


class Audit:
    """One checkpoint audited on a one-group design; sources observed and automation evaluated once."""

    def __init__(self, tmp_path, instance, tiny_llama_dir, judges: str = "rules"):
        self.design, self.instance = tmp_path / "design", instance
        self.design.mkdir(exist_ok=True)
        for name, data in DESIGN.items():
            (self.design / name).write_text(json.dumps(data))
        self.storage = Storage(warehouse_dir=str(tmp_path / "wh"))
        self.settings = AuditSettings(design=str(self.design), samples=1, judges=judges)
        folder = str(shutil.copytree(tiny_llama_dir, tmp_path / "ckpt-s"))
        self.key = register(resolve_source(folder, self.storage.paths()), self.storage.paths()).key
        self.defs = build_definitions(generator=VersionedFakeGeneratorResource(), storage=self.storage,
                                      audit=self.settings)
        instance.add_dynamic_partitions("model", [self.key])
        self.cursor = None
        for job, partition in (("prompts_job", "white"), ("audit_job", model_group_key(self.key, "white")),
                               ("metrics_job", None)):
            self.run(job, partition)
        self.observe()
        assert self.tick() == {}  # the first evaluation only sets the cursor

    def run(self, job: str, partition=None) -> None:
        assert self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, partition_key=partition).success

    def observe(self) -> None:
        for asset in SOURCES:  # one observation run each: they have different partitions
            observe([asset], instance=self.instance, resources={"storage": self.storage, "audit": self.settings})

    def tick(self) -> dict[str, list[str]]:
        """One evaluation of every automation condition: asset -> requested partitions."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        requested = {key.to_user_string(): sorted(str(p) for p in result.get_requested_partitions(key))
                     for key in self.defs.resolve_asset_graph().get_all_asset_keys()}
        return {k: v for k, v in requested.items() if v and k not in {s.key.to_user_string() for s in SOURCES}}


@pytest.fixture()
def audit(tmp_path, tiny_llama_dir):
    with dg.instance_for_test() as instance:
        yield Audit(tmp_path, instance, tiny_llama_dir)


def test_nothing_stale_requests_nothing(audit):
    audit.observe()
    assert audit.tick() == {}


def test_edited_template_rerenders_prompts_then_regenerates_then_rebuilds(audit):
    (audit.design / "prompts.json").write_text(json.dumps({"muslims": ["[NAME] flew to [BLANK]",
                                                                      "[NAME] works as a [BLANK]"]}))
    audit.observe()
    assert audit.tick() == {"prompts": ["white"]}  # generations wait for their prompts
    audit.run("prompts_job", "white")
    partition = str(model_group_key(audit.key, "white"))
    assert audit.tick() == {"generations": [partition], "judgments": [partition]}  # one audit run
    audit.run("audit_job", model_group_key(audit.key, "white"))
    assert audit.tick() == {"metric_tables": ["None"]}
    audit.run("metrics_job")
    audit.observe()
    assert audit.tick() == {}


def test_replaced_checkpoint_regenerates_only(audit, tmp_path):
    config = tmp_path / "ckpt-s" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "qos_note": "retrained"}))
    audit.observe()
    partition = str(model_group_key(audit.key, "white"))
    assert audit.tick() == {"generations": [partition], "judgments": [partition]}


def test_redefined_judge_rejudges_only(audit, monkeypatch):
    from qos_pipeline.judging.rules.judge import RulesJudge

    monkeypatch.setattr(RulesJudge, "judge_id", "rules.0000beef")  # as after an edit of a rule
    audit.observe()
    assert audit.tick() == {"judgments": [str(model_group_key(audit.key, "white"))]}


def test_judges_are_found_in_the_configured_warehouse(tmp_path, tiny_llama_dir):
    # The nightly judge refresh looked judges up in the default warehouse, so a learned judge trained into
    # the configured one failed; the judge_definitions source resolves them through the storage resource.
    from qos_pipeline.judging import learned
    from qos_pipeline.judging.evaluation.labelled import load_labelled

    rows = [{"prompt": t.format(n=n), "response": r.format(n=n), "label": label, "group": g, "name": n}
            for t in TEMPLATES for n, g in NAMES for label, texts in RESPONSES.items() for r in texts]
    labelled = tmp_path / "labelled.csv"
    pd.DataFrame(rows).to_csv(labelled, index=False)
    df = load_labelled(labelled, Storage().paths().assets)
    learned.save(df, learned.fit(df), "toy", tmp_path / "wh" / "judges", labelled.name)
    with dg.instance_for_test() as instance:
        audit = Audit(tmp_path, instance, tiny_llama_dir, judges="rules,learned:toy")
        records = instance.fetch_observations(dg.AssetKey("judge_definitions"), limit=1).records
        assert records and records[0].asset_observation.data_version
        assert audit.tick() == {}
