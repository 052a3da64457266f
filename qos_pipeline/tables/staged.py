"""The staged tables (loaded from the Parquet partitions of ``staging/``), the taxonomy table and the views
over them that the build reads. Their keys are checked before loading (``metrics.build``), their layouts
say which files are partitions (``staging.staged_files``)."""

from qos_pipeline.tables.schema import Layout, Table, columns, declare

PROMPT_COLUMNS = columns(
    "design VARCHAR NOT NULL, template_id VARCHAR NOT NULL, template_name VARCHAR NOT NULL, "
    "template_text VARCHAR NOT NULL, target_group VARCHAR NOT NULL, name VARCHAR NOT NULL, "
    "name_group VARCHAR NOT NULL, gender VARCHAR NOT NULL, popularity VARCHAR NOT NULL, prompt_text VARCHAR NOT NULL")
"""What a prompt is (after its id): the generations carry it too."""
OUTPUT_COLUMNS = columns(
    "generation_id VARCHAR NOT NULL, prompt_id VARCHAR NOT NULL, sample INTEGER NOT NULL, model_key VARCHAR NOT NULL, "
    "model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL")
"""The keys of one output, first in the generations and in their judgments."""
VALIDATION_COLUMNS = columns("validation_id VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL")
"""The validation a judge_validation* row belongs to."""
VALIDATION_FILES = Layout(("judge",), None, "dataset", (("judge", "judge_id"), ("dataset", "dataset")))
"""A judge validation's files: one per judge and labelled dataset (``judging.evaluation``)."""

declare(
    Table("labels", kind="taxonomy", grain="The taxonomy: label, ordinal, is_refusal (refusal and harmful refusal).",
          columns=columns("label VARCHAR NOT NULL, ordinal INTEGER NOT NULL, is_refusal BOOLEAN NOT NULL"),
          key=("label",)),
    Table('prompts', kind='staged',
          grain=('Grain: one row per (template, name) of a design. Key: prompt_id (sha256 of the rendered '
                 'prompt).'),
          columns=(columns("prompt_id VARCHAR NOT NULL") + PROMPT_COLUMNS
                   + columns("run_id VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL")),
          key=('prompt_id',),
          layout=Layout(("group",), "data", columns=(("group", "name_group"),)), asset='prompts'),
    Table('generations', kind='staged',
          grain=('Grain: one row per (model, prompt format, prompt, sample). Key: generation_id (hash of what '
                 'produced the row and its response).'),
          columns=(OUTPUT_COLUMNS + columns(
              "system_prompt VARCHAR, gen_config VARCHAR NOT NULL, gen_config_hash VARCHAR NOT NULL, seed BIGINT, "
              "response VARCHAR NOT NULL, finish_reason VARCHAR NOT NULL, n_new_tokens INTEGER, "
              "source VARCHAR NOT NULL, cache_key VARCHAR, recorded_label VARCHAR") + PROMPT_COLUMNS
                   + columns("run_id VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL")),
          key=('generation_id',),
          layout=Layout(("model", "group"), "data", columns=(("model", "model_key"), ("group", "name_group"))),
          asset='generations'),
    Table('judgments', kind='staged',
          grain=('Grain: one row per (generation, judge). Key: generation_id, judge_id. label is one of the six '
                 'labels or unjudged.'),
          columns=OUTPUT_COLUMNS + columns("judge_id VARCHAR NOT NULL, label VARCHAR NOT NULL, reason VARCHAR, "
                                           "scores VARCHAR, run_id VARCHAR NOT NULL, judged_at TIMESTAMPTZ NOT NULL"),
          key=('generation_id', 'judge_id'),
          layout=Layout(("model", "group"), None, "judge", (("model", "model_key"), ("judge", "judge_id"))),
          asset='judgments'),
    Table('human_labels', kind='staged',
          grain=('Grain: generation_id x annotator (qos label import). A human label of an audited output; a '
                 'relabel by the same annotator replaced the earlier one.'),
          columns=columns(
              'generation_id VARCHAR NOT NULL, model_key VARCHAR NOT NULL, label VARCHAR NOT NULL, '
              'annotator VARCHAR NOT NULL, source_file VARCHAR, imported_at TIMESTAMPTZ NOT NULL, '
              'import_id VARCHAR NOT NULL'),
          key=('generation_id', 'annotator'),
          layout=Layout(("model",), "labels", columns=(("model", "model_key"),)), asset='human_labels'),
    Table('judge_validations', kind='staged',
          grain=('Grain: validation_id x name_group (all = whole file). A judge scored against human labels: '
                 'agreement, refusal F1, sensitivity/specificity and their counts.'),
          columns=VALIDATION_COLUMNS + columns(
              'dataset_file VARCHAR NOT NULL, dataset_sha256 VARCHAR NOT NULL, name_group VARCHAR NOT NULL, '
              'n INTEGER NOT NULL, n_unjudged INTEGER NOT NULL, accuracy DOUBLE, macro_f1 DOUBLE, kappa DOUBLE, '
              'refusal_f1 DOUBLE, refusal_precision DOUBLE, refusal_recall DOUBLE, sensitivity DOUBLE, '
              'specificity DOUBLE, n_human_refusal INTEGER, n_human_other INTEGER, true_positives INTEGER, '
              'true_negatives INTEGER, human_refusal_rate DOUBLE, judge_refusal_rate DOUBLE, refusal_bias DOUBLE, '
              'kappa_ci_low DOUBLE, kappa_ci_high DOUBLE, accuracy_ci_low DOUBLE, accuracy_ci_high DOUBLE, '
              'macro_f1_ci_low DOUBLE, macro_f1_ci_high DOUBLE, refusal_f1_ci_low DOUBLE, '
              'refusal_f1_ci_high DOUBLE, harmful_refusal_f1_ci_low DOUBLE, harmful_refusal_f1_ci_high DOUBLE, '
              'resamples INTEGER, clusters INTEGER, reference_group VARCHAR, bias_diff_vs_ref DOUBLE, '
              'measured_diff_vs_ref DOUBLE, flagged BOOLEAN NOT NULL, flag_reason VARCHAR, note VARCHAR, '
              'run_id VARCHAR, validated_at TIMESTAMPTZ, outputs_model VARCHAR, grouped_by VARCHAR'),
          key=('validation_id', 'name_group'),
          layout=VALIDATION_FILES, asset='judge_validations'),
    Table('judge_validation_labels', kind='staged',
          grain=('Grain: validation_id x name_group x label: precision, recall, f1, support.'),
          columns=VALIDATION_COLUMNS + columns(
              'name_group VARCHAR NOT NULL, label VARCHAR NOT NULL, precision DOUBLE, recall DOUBLE, f1 DOUBLE, '
              'support INTEGER NOT NULL'),
          key=('validation_id', 'name_group', 'label'),
          layout=VALIDATION_FILES, asset='judge_validations'),
    Table('judge_validation_confusion', kind='staged',
          grain=('Grain: validation_id x name_group x human_label x judge_label: count.'),
          columns=VALIDATION_COLUMNS + columns(
              'name_group VARCHAR NOT NULL, human_label VARCHAR NOT NULL, judge_label VARCHAR NOT NULL, '
              'count INTEGER NOT NULL'),
          key=('validation_id', 'name_group', 'human_label', 'judge_label'),
          layout=VALIDATION_FILES, asset='judge_validations'),
    Table('judge_validation_measures', kind='staged',
          grain=("Grain: validation_id x measure x name_group (all = whole file). The judge's sensitivity, "
                 'specificity and rates per measure with template-cluster CIs; gap_error = judge gap - human gap '
                 'vs the reference group, flagged where it could change what the gap says.'),
          columns=VALIDATION_COLUMNS + columns(
              'measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, n INTEGER NOT NULL, '
              'true_positives INTEGER NOT NULL, false_negatives INTEGER NOT NULL, '
              'false_positives INTEGER NOT NULL, true_negatives INTEGER NOT NULL, sensitivity DOUBLE, '
              'sensitivity_ci_low DOUBLE, sensitivity_ci_high DOUBLE, specificity DOUBLE, '
              'specificity_ci_low DOUBLE, specificity_ci_high DOUBLE, human_rate DOUBLE, human_rate_ci_low DOUBLE, '
              'human_rate_ci_high DOUBLE, judge_rate DOUBLE, judge_rate_ci_low DOUBLE, judge_rate_ci_high DOUBLE, '
              'judge_gap DOUBLE, human_gap DOUBLE, gap_error DOUBLE, gap_error_ci_low DOUBLE, '
              'gap_error_ci_high DOUBLE, flagged BOOLEAN NOT NULL, flag_basis VARCHAR, flag_reason VARCHAR, '
              'reference_group VARCHAR'),
          key=('validation_id', 'measure', 'name_group'),
          layout=VALIDATION_FILES, asset='judge_validations'),
    Table('judged', kind='view',
          grain=('Grain: one row per (generation, judge): judgments joined to the exact generation they labelled '
                 '(on generation_id); every metric aggregates this view.'),
          sql="""SELECT g.model_key, g.model_version, g.prompt_format, g.gen_config_hash, j.judge_id, g.generation_id,
       g.prompt_id, g.sample, g.design, g.template_id, g.template_name, g.template_text, g.target_group,
       g.name, g.name_group, g.gender, g.popularity, g.prompt_text, g.response, j.label, j.reason,
       g.run_id AS generation_run_id, j.run_id AS judgment_run_id
FROM judgments j
JOIN generations g USING (generation_id, model_key, model_version, prompt_format, prompt_id, sample)"""),
    Table('human_label_consensus', kind='view',
          grain=('Grain: generation_id. One human label per labelled output: the majority of its annotators, a '
                 'tie to the latest import.'),
          sql="""SELECT generation_id, model_key,
       arg_max(label, struct_pack(votes := votes, latest := latest)) AS label,
       sum(votes)::INTEGER AS annotators
FROM (SELECT generation_id, model_key, label, count(*) AS votes, max(imported_at) AS latest
      FROM human_labels GROUP BY ALL)
GROUP BY generation_id, model_key"""),
)
