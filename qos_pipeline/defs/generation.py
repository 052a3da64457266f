"""The ``generations`` asset: one partition per model x group, on the ``gpu`` pool."""

import warnings
from typing import Iterator

import dagster as dg

from qos_pipeline.defs.checks import checked, counts, failing_clearly, specs
from qos_pipeline.defs.executors import GPU_STEP_TAGS
from qos_pipeline.defs.partitions import model_group_partitions, split_key
from qos_pipeline.defs.resources import AuditConfig, GeneratorResource
from qos_pipeline.generation import cache
from qos_pipeline.generation.formats import select_formats
from qos_pipeline.generation.interface import Generator
from qos_pipeline.generation.step import generate
from qos_pipeline.staging import partition_file, read_partition, write_partition

GENERATION_CHECKS = ["generations_schema", "generations_complete", "generations_responses_nonempty"]

with warnings.catch_warnings():  # beta API, but the documented way to map model x group -> group
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_GROUP = dg.MultiToSingleDimensionPartitionMapping("group")


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"pytorch", "parquet"}, pool="gpu",
          deps=[dg.AssetDep("prompts", partition_mapping=BY_GROUP)], op_tags=GPU_STEP_TAGS,
          check_specs=specs("generations", GENERATION_CHECKS))
@failing_clearly
def generations(context: dg.AssetExecutionContext, audit: AuditConfig, generator: GeneratorResource
                ) -> Iterator:
    """Chat-model outputs for one model x group: ``samples`` generations per prompt under each configured
    prompt format (chat template with the paper's system prompt by default), seeded per (prompt, sample).
    Batches are stored as they finish (a killed run resumes) and rows already generated under the same
    model version, prompt, format, sampling settings and seed are reused, not generated again.
    Grain: one row per (prompt_format, prompt_id, sample) with model version, format and sampling provenance."""
    model, group = split_key(context)
    paths = audit.paths()
    prompts_df = read_partition(partition_file(paths.staging, "prompts", group), f"prompts[{group}]")
    gen = generator.build(model, paths)
    if not isinstance(gen, Generator):  # a plugged-in resource must provide the whole interface
        raise TypeError(f"the generator resource built a {type(gen).__name__}, which does not implement "
                        "qos_pipeline.generation.interface.Generator in full")
    formats = select_formats(paths.assets, audit.prompt_formats, gen.default_prompt_format)
    df, outcomes = generate(
        prompts_df, gen, audit.sampling(), audit.samples, audit.seed, audit.batch_size, context.run_id,
        progress=lambda done, total: context.log.info(f"generations[{model}|{group}]: {done}/{total} rows"),
        formats=formats, cache_dir=cache.cache_folder(paths.warehouse, model, group))
    yield from checked(f"generations[{model}|{group}]", outcomes)
    path = write_partition(df, partition_file(paths.staging, "generations", group, model))
    fresh = int((df["run_id"] == context.run_id).sum())
    yield dg.MaterializeResult(
        metadata={"rows": len(df), "generated": fresh, "reused": len(df) - fresh,
                  "model_version": gen.model_version, "prompt_formats": ", ".join(f.id for f in formats),
                  "gen_config": str(df["gen_config"].iloc[0]) if len(df) else "",
                  "finish_reasons": counts(df, "finish_reason"), "path": str(path), "dagster/row_count": len(df)})
