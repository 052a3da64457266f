"""The ``generations`` asset: one partition per model x group, on the ``gpu`` pool."""

import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pandas as pd

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.defs.automation import REFRESH
from qos_pipeline.defs.checks import column_schema, counts, failing_clearly, materialized, specs, stop_if_blocked, tally
from qos_pipeline.defs.config import GenerationsConfig
from qos_pipeline.defs.executors import GPU_STEP_TAGS
from qos_pipeline.defs.partitions import model_group_partitions, split_key
from qos_pipeline.defs.resources import AuditSettings, GeneratorResource, Storage, optional
from qos_pipeline.defs.sources import model_sources
from qos_pipeline.generation import cache
from qos_pipeline.generation.formats import select_formats
from qos_pipeline.generation.interface import Generator
from qos_pipeline.generation.models.added import RecordedSource
from qos_pipeline.generation.models.source import ModelSource
from qos_pipeline.generation.sampling import RunSettings
from qos_pipeline.generation.step import generate
from qos_pipeline.ingest.partitions import spool
from qos_pipeline.ingest.reading import IngestError
from qos_pipeline.processes import pause_point
from qos_pipeline.staging import partition_file, read_partition, stored, write_partition, writer_lock

with warnings.catch_warnings():  # beta API, but the documented way to map model x group -> one dimension
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_GROUP = dg.MultiToSingleDimensionPartitionMapping("group")
    BY_MODEL = dg.MultiToSingleDimensionPartitionMapping("model")


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"pytorch", "parquet"}, pool="gpu",
          deps=[dg.AssetDep("prompts", partition_mapping=BY_GROUP),
                dg.AssetDep(model_sources, partition_mapping=BY_MODEL)],
          op_tags=GPU_STEP_TAGS, automation_condition=REFRESH,
          check_specs=specs("generations", model_group_partitions), metadata=column_schema("generations"))
@failing_clearly
def generations(context: dg.AssetExecutionContext, config: GenerationsConfig, storage: Storage,
                audit: AuditSettings, generator: GeneratorResource) -> Iterator:
    """Chat-model outputs for one model x group: ``samples`` generations per prompt under each prompt format
    (chat template with the paper's system prompt by default), seeded per (prompt, sample). Batches are
    stored as they finish (a killed run resumes) and rows already generated under the same model version,
    prompt, format, sampling settings and seed are reused. A model key of recorded outputs (``qos ingest``)
    reads its file again instead (its prompts come from the file, not from ``prompts``). Grain: one row per
    (prompt_format, prompt_id, sample); key ``generation_id``, with model version, format and sampling
    provenance.

    Partitions are the whole model x group grid (Dagster cannot leave a combination out): a group that a
    recorded key's file has no names of stays Missing, and nothing is expected there (materializing it
    fails, saying the file has no rows of that group); a group no ``qos run`` of a generated model covered
    stays Missing until one does."""
    model, group = split_key(context)
    paths = storage.paths()
    target = partition_file(paths.staging, "generations", group, model)
    source = generator.source(model, paths)  # the key resolved once for this run (models/source.py)
    if source.recorded is not None:
        yield from _recorded(context, source.recorded, group, paths, target)
        return
    df, outcomes, settings = _generate(context, config, config.effective(stored(target), audit), paths, generator,
                                       source, group, audit)
    yield from stop_if_blocked(context, f"generations[{model}|{group}]", outcomes)
    with writer_lock(paths.staging, f"generations[{model}|{group}]", notify=context.log.warning):
        path = write_partition(df, target, settings.stored())
    pause_point("generations:written")
    fresh = int((df["run_id"] == context.run_id).sum())
    yield materialized(outcomes, {
        "rows": len(df), "generated": fresh, "reused": len(df) - fresh,
        "model_version": str(df["model_version"].iloc[0]) if len(df) else "",
        "prompt_formats": ", ".join(settings.prompt_formats), "source": str(df["source"].iloc[0]) if len(df) else "",
        "gen_config": str(df["gen_config"].iloc[0]) if len(df) else "",
        "finish_reasons": counts(df, "finish_reason"), "path": str(path), "dagster/row_count": len(df)})


def _recorded(context: dg.AssetExecutionContext, source: RecordedSource, group: str, paths, target: Path) -> Iterator:
    """A model key of recorded outputs: its file read again a chunk at a time, this group's rows written to a
    temporary file beside the partition and swapped in once the checks pass (memory flat in the file)."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")  # skipped by the loader
    try:
        found = spool(source, context.run_id, paths.assets, lambda _: temporary, groups={group})
        if group not in found:
            raise IngestError(f"{source.file} has no rows of group {group!r}; nothing to materialize for "
                              f"generations[{source.key}|{group}]")
        item = found[group]
        outcomes = item.outcomes()
        yield from stop_if_blocked(context, f"generations[{source.key}|{group}]", outcomes)
        with writer_lock(paths.staging, f"generations[{source.key}|{group}]", notify=context.log.warning):
            os.replace(temporary, target)
        pause_point("generations:written")
    finally:
        temporary.unlink(missing_ok=True)
    yield materialized(outcomes, {
        "rows": item.rows, "generated": item.rows, "reused": 0, "model_version": item.first["model_version"],
        "prompt_formats": source.prompt_format, "source": item.first["source"], "gen_config": item.first["gen_config"],
        "finish_reasons": tally("finish_reason", pd.Series(dict(item.finish_reasons.most_common()))),
        "path": str(target), "dagster/row_count": item.rows})


def _generate(context: dg.AssetExecutionContext, config: GenerationsConfig, settings: RunSettings, paths,
              generator: GeneratorResource, source: ModelSource, group: str, audit: AuditSettings
              ) -> tuple[pd.DataFrame, list[CheckOutcome], RunSettings]:
    """The partition's rows, its checks, and its settings with the prompt formats resolved (the model's own
    when none was asked for): what is kept with the partition."""
    model = source.key
    prompts_df = read_partition(partition_file(paths.staging, "prompts", group), f"prompts[{group}]")
    gen = generator.build(source, compile=config.compile, decoder=config.decoder)
    if not isinstance(gen, Generator):  # a plugged-in resource must provide the whole interface
        raise TypeError(f"the generator resource built a {type(gen).__name__}, which does not implement "
                        "qos_pipeline.generation.interface.Generator in full")
    formats = select_formats(paths.assets, list(settings.prompt_formats) or None, gen.default_prompt_format)
    settings = replace(settings, prompt_formats=tuple(f.id for f in formats))
    df, outcomes = generate(
        prompts_df, gen, settings.sampling, settings.samples, settings.seed,
        optional(config.batch_size, audit.batch_size), context.run_id,
        progress=lambda done, total: context.log.info(f"generations[{model}|{group}]: {done}/{total} rows"),
        formats=formats, cache_dir=cache.cache_folder(paths.warehouse, model, group))
    return df, outcomes, settings
