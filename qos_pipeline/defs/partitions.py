"""Partitions: ``group`` is static (from assets/groups.yaml), ``model`` is dynamic (added by CLI or sensor)."""

import dagster as dg

from qos_pipeline.config import project_paths
from qos_pipeline.design import load_groups

GROUPS, REFERENCE_GROUP = load_groups(project_paths().assets)

group_partitions = dg.StaticPartitionsDefinition(GROUPS)
model_partitions = dg.DynamicPartitionsDefinition(name="model")
model_group_partitions = dg.MultiPartitionsDefinition({"model": model_partitions, "group": group_partitions})


def model_group_key(model: str, group: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"model": model, "group": group})


def split_key(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(model, group) of a model x group run, with a clear error for a malformed key."""
    key = context.partition_key
    if not isinstance(key, dg.MultiPartitionKey):
        raise dg.Failure(f"partition key {key!r} is not a model|group key; pick a partition such as "
                         f"'{GROUPS[0]}|smollm2-135m-instruct' in the UI")
    return key.keys_by_dimension["model"], key.keys_by_dimension["group"]
