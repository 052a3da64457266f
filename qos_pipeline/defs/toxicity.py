"""The optional ``toxicity`` asset: the paper's contrast of a toxicity classifier with the taxonomy. Off (no
materialization) unless a run names a classifier; never automated, so it costs nothing until asked for."""

from collections.abc import Iterator

import dagster as dg

from qos_pipeline.defs.checks import failing_clearly
from qos_pipeline.defs.partitions import model_group_partitions, split_key
from qos_pipeline.defs.resources import Storage
from qos_pipeline.generation.models.source import resolve
from qos_pipeline.judging.specs import get_judge
from qos_pipeline.judging.toxicity import ToxicityClassifier, group_rates, score_rows
from qos_pipeline.staging import partition_file, read_partition, write_partition


class ToxicityConfig(dg.Config):
    """``classifier``: a model key (assets/models.yaml) or a local Hugging Face sequence-classification
    folder; empty: the asset is off. ``toxic_label``: the classifier's label that means toxic (empty: the
    label named toxic, else the positive class). ``threshold``: probability from which a response counts
    as toxic. ``judge``: whose refusal labels the rates are set beside (default: the recommended judge)."""

    classifier: str = ""
    toxic_label: str | None = None
    threshold: float = 0.5
    judge: str = "default"
    batch_size: int = 32


def _classifier(config: ToxicityConfig, storage: Storage) -> ToxicityClassifier:
    spec = resolve(config.classifier, storage.paths())
    # cheap: the model itself is loaded once per process (qos_pipeline.generation.models.loaded)
    return ToxicityClassifier(spec.path, spec.key, spec.version, config.toxic_label, config.batch_size)


@dg.asset(partitions_def=model_group_partitions, group_name="audit", kinds={"pytorch", "parquet"},
          deps=["generations", "judgments"], output_required=False)
@failing_clearly
def toxicity(context: dg.AssetExecutionContext, config: ToxicityConfig, storage: Storage) -> Iterator:
    """Toxicity probability of every response of one model x group, by a configured local sequence
    classifier, and the group's toxic rate beside the judge's refusal and harmful-refusal rates (the
    paper's contrast: refusals carry the bias while a toxicity classifier scores them ~0% toxic).
    Off unless run config ``classifier`` names one: then nothing is materialized, and every partition reads
    Missing. Grain: one row per generation_id, staged under ``toxicity/model=<m>/group=<g>/``."""
    if not config.classifier:
        context.log.info("toxicity is off: no classifier configured (run config 'classifier': a model key or "
                         "a local sequence-classification folder)")
        return
    model, group = split_key(context)
    paths = storage.paths()
    gens = read_partition(partition_file(paths.staging, "generations", group, model), f"generations[{model}|{group}]")
    classifier = _classifier(config, storage)
    scored = score_rows(gens, classifier, config.threshold, context.run_id)
    judge_id = get_judge(config.judge, paths).judge_id
    judged = partition_file(paths.staging, "judgments", group, model, judge_id)
    judgments = read_partition(judged, f"judgments[{model}|{group}] of {judge_id}") if judged.is_file() else None
    write_partition(scored, partition_file(paths.staging, "toxicity", group, model))
    rates = group_rates(scored, judgments)
    yield dg.MaterializeResult(metadata={
        "rows": len(scored), "dagster/row_count": len(scored), "classifier": classifier.classifier_id,
        "judge": judge_id if judgments is not None else f"{judge_id} (no judgments of this partition yet)",
        "rates": dg.MetadataValue.md(rates.to_markdown(index=False, floatfmt=".3f")),
        "toxic_rate": float(rates["toxic_rate"].iloc[0]),
    })
