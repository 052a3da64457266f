"""Partitions: ``group`` is static (from assets/groups.yaml), ``model`` is dynamic (added by CLI or sensor).

The group keys are read when the definitions load, because a partitions definition is part of the code
location's structure, not of a run: after editing groups.yaml, reload the code location. They come from
the assets folder runs use, ``QOS_ASSETS`` when set.
"""

import os

import dagster as dg

from qos_pipeline.prompts.design import load_groups
from qos_pipeline.provenance import check_key
from qos_pipeline.settings import Paths

GROUPS, _ = load_groups(Paths.resolve(os.environ.get("QOS_ASSETS") or None).assets)

group_partitions = dg.StaticPartitionsDefinition(GROUPS)
model_partitions = dg.DynamicPartitionsDefinition(name="model")
model_group_partitions = dg.MultiPartitionsDefinition({"model": model_partitions, "group": group_partitions})


def model_group_key(model: str, group: str) -> dg.MultiPartitionKey:
    """The key of one model x group partition (Dagster prints it as ``group|model``)."""
    return dg.MultiPartitionKey({"model": model, "group": group})


def split_key(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(model, group) of a model x group run, with a clear error for a malformed key.

    A run launched from the UI or by tag carries the key as a plain string ("group|model").
    """
    key = context.partition_key
    try:
        if not isinstance(key, dg.MultiPartitionKey):
            key = model_group_partitions.get_partition_key_from_str(key)
        model, group = key.keys_by_dimension["model"], key.keys_by_dimension["group"]
        return check_key(model, "model"), check_key(group, "group")
    except Exception as exc:  # dagster raises CheckError for a string without the "|" separator
        raise dg.Failure(f"partition key {context.partition_key!r} is not a valid group|model key ({exc}); "
                         f"pick a partition such as '{GROUPS[0]}|smollm2-135m-instruct' in the UI") from None
