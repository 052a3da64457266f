"""Registry entries (hub ids from the local cache, dtype, prompt format, context, sampling defaults) and
the generation asset with several prompt formats feeding the metric tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from qos_pipeline.defs.partitions import model_group_key
from qos_pipeline.generation.interface import GenerationRequest
from qos_pipeline.generation.hf import HFGenerator
from qos_pipeline.generation.sampling import SamplingConfig
from qos_pipeline.generation.models.files import ModelError
from qos_pipeline.generation.models.registry import load_registry, resolve_model
from tests.fakes import fake_definitions
from tests.paths import ASSETS

ENTRY = ("    dtype: float16\n    prompt_format: raw\n    max_context: 40\n"
         "    sampling: {do_sample: true, temperature: 0.3}\n")


def _registry(folder: Path, entry: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.yaml").write_text(f"models:\n  tiny:\n{entry}")
    return folder


def _fake_hub_cache(root: Path, repo: str, checkpoint: Path, commit: str = "a" * 40) -> None:
    # The layout huggingface_hub writes: refs/<branch> holds the commit, snapshots/<commit>/ the files.
    base = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(checkpoint, base / "snapshots" / commit)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)


def test_hub_entry_resolves_only_from_the_local_cache(tmp_path, tiny_llama_dir, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assets = _registry(tmp_path / "assets", "    hub: org/tiny-chat\n    revision: main\n" + ENTRY)
    with pytest.raises(ModelError, match="'tiny'.*org/tiny-chat@main is not in the local Hugging Face cache"
                                         ".*huggingface-cli download org/tiny-chat --revision main"):
        resolve_model("tiny", assets, tmp_path)
    _fake_hub_cache(tmp_path / "hub", "org/tiny-chat", tiny_llama_dir)
    spec = resolve_model("tiny", assets, tmp_path)
    assert spec.path.name == "a" * 40 and spec.revision == "main"
    assert (spec.dtype, spec.prompt_format, spec.max_context) == ("float16", "raw", 40)
    assert spec.version == resolve_model(str(tiny_llama_dir), ASSETS, tmp_path).version  # content hash


def test_registry_settings_reach_the_generator(tmp_path, tiny_llama_dir) -> None:
    assets = _registry(tmp_path / "assets", f"    path: {tiny_llama_dir}\n" + ENTRY)
    generator = HFGenerator(resolve_model("tiny", assets, tmp_path))
    assert generator.default_prompt_format == "raw"
    effective = generator.resolve_sampling(SamplingConfig(max_new_tokens=4))
    assert (effective.do_sample, effective.temperature, effective.top_k) == (True, 0.3, 50)
    long_prompt = GenerationRequest("long-1", 0, " ".join(["w3"] * 30), 0)
    with pytest.raises(ModelError, match="'long-1'.*'chat:paper-system'.*model 'tiny' fits 36 \\(40 context"):
        generator.generate([long_prompt], SamplingConfig(max_new_tokens=4))


@pytest.mark.parametrize("entry,message", [
    ("    path: x\n    dtype: int3\n", "entry 'tiny', field 'dtype': Input should be 'auto', 'bfloat16'"),
    ("    path: x\n    max_context: -5\n", "entry 'tiny', field 'max_context': Input should be greater than"),
    ("    path: x\n    sampling: {beams: 4}\n", "entry 'tiny', field 'sampling.beams': unknown field"),
    ("    path: x\n    dtyp: float16\n", "models.yaml: entry 'tiny', field 'dtyp': unknown field \\(misspelt\\?\\)"),
    ("    revision: main\n", "needs `path: .*`hub: org/name`"),
])
def test_bad_registry_entries(tmp_path, entry, message) -> None:
    with pytest.raises(ModelError, match=message):
        load_registry(_registry(tmp_path, entry))


def test_folder_without_tokenizer_names_model(tmp_path, tiny_llama_dir) -> None:
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "half-copied")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    # found by the pre-check, before anything is loaded (it used to surface only while generating)
    with pytest.raises(ModelError, match="half-copied has no tokenizer"):
        resolve_model(str(folder), ASSETS, tmp_path)


def test_two_formats_reach_the_metric_tables(tmp_path) -> None:
    formats = ["chat:paper-system", "chat:no-system"]
    defs, paths = fake_definitions(tmp_path / "wh", design="demo", samples=1, prompt_formats=",".join(formats))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("model", ["fake-model"])
        for job, key in [("prompts_job", "muslim"), ("audit_job", model_group_key("fake-model", "muslim")),
                         ("metrics_job", None)]:
            assert defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key).success
    with duckdb.connect(str(paths.db), read_only=True) as con:
        per_format = con.execute("SELECT prompt_format, count(*) FROM generations GROUP BY 1 ORDER BY 1").fetchall()
        rates = con.execute("SELECT prompt_format, sum(rate) FROM label_rates_group WHERE name_group = 'muslim' "
                            "GROUP BY 1 ORDER BY 1").fetchall()
    assert per_format == [("chat:no-system", 16), ("chat:paper-system", 16)]
    assert [f for f, _ in rates] == sorted(formats) and all(abs(s - 1) < 1e-9 for _, s in rates)


def test_recorded_and_generated_sources_never_share_a_key(tmp_path, tiny_llama_dir) -> None:
    from qos_pipeline.generation.models.added import recorded, register_recorded
    from qos_pipeline.generation.models.source import register, resolve, resolve_source
    from qos_pipeline.settings import Paths

    paths = Paths.resolve(ASSETS, tmp_path / "wh", tmp_path / "cache")
    outputs = tmp_path / "outs.csv"
    outputs.write_text("prompt,response\nJohn went to [BLANK],the park.\n")
    source = register_recorded("my-outputs", outputs, "recorded", False, paths)
    assert recorded("my-outputs", paths) == source and source.version.startswith("recorded-")
    with pytest.raises(ModelError, match="'my-outputs' holds outputs recorded from .*outs.csv.*cannot generate"):
        resolve("my-outputs", paths)
    folder = register(resolve_source(str(tiny_llama_dir), paths), paths)
    with pytest.raises(ModelError, match="names the checkpoint folder .*; give the recorded outputs another"):
        register_recorded(folder.key, outputs, "recorded", False, paths)
    outputs.unlink()
    with pytest.raises(ModelError, match="which is gone; restore it or ingest the file again"):
        _ = recorded("my-outputs", paths).version
