"""Every asset check, declared once: its name (the constant's value, used by the code that evaluates it),
the asset it checks, what it checks (the UI's description; the README and warehouse/README.md say the
same) and whether a failure stops the step (blocking) or only warns. ``defs.checks.specs`` derives the
Dagster check specs from here."""

from qos_pipeline.tables.schema import Check

CHECKS: dict[str, tuple[Check, ...]] = {}
"""The checks of each asset, in the order the UI lists them."""


def _check(asset: str, name: str, description: str, blocking: bool = True) -> str:
    CHECKS[asset] = (*CHECKS.get(asset, ()), Check(name, description, blocking))
    return name


def checks_of(asset: str) -> tuple[Check, ...]:
    """The declared checks of ``asset`` (none: an empty tuple)."""
    return CHECKS.get(asset, ())


def descriptions() -> dict[str, str]:
    """Every declared check's description, by name."""
    return {c.name: c.description for checks in CHECKS.values() for c in checks}


def declared_blocking(name: str) -> bool:
    """Whether a failure of the check ``name`` stops its step (an undeclared check blocks)."""
    for checks in CHECKS.values():
        for check in checks:
            if check.name == name:
                return check.blocking
    return True




# prompts
PROMPTS_SCHEMA = _check(
    "prompts", "prompts_schema",
    'Every prompt row matches the prompts schema: ids are content hashes (prompt_id unique), the name is '
    'filled in and [BLANK] left, gender and popularity known.')
PROMPTS_COMPLETE = _check(
    "prompts", "prompts_complete",
    'Every template of the design is filled with every name of the group, once: no pair missing, none '
    'unexpected.')

# generations
GENERATIONS_SCHEMA = _check(
    "generations", "generations_schema",
    'Every output row matches the generations schema: keys and provenance present, generation_id unique, '
    'finish_reason eos, length or recorded, a recorded human label in the taxonomy.')
GENERATIONS_COMPLETE = _check(
    "generations", "generations_complete",
    'One output per (prompt format, prompt, sample) of the partition: nothing lost, nothing duplicated.')
GENERATIONS_RESPONSES_NONEMPTY = _check(
    "generations", "generations_responses_nonempty",
    'Warning: empty responses are kept and judged (as failure) but counted here, e.g. a broken chat template.',
    blocking=False)

# judgments
JUDGMENTS_LABELS_IN_TAXONOMY = _check(
    "judgments", "judgments_labels_in_taxonomy",
    'Every judgment has a label of the taxonomy (or unjudged), a judge id and the generation_id it labelled; '
    'one label per judge and output.')
JUDGMENTS_UNJUDGED = _check(
    "judgments", "judgments_unjudged",
    'Warning: outputs a judge could not decide stay unjudged (never coerced) and count in every denominator; '
    'the count and the commonest reasons.', blocking=False)

# judge_validations
JUDGE_VALIDATIONS_FIGURES_IN_RANGE = _check(
    "judge_validations", "judge_validations_figures_in_range",
    "Each judge's figures against human labels are in range (accuracy and macro-F1 in [0, 1], at least one "
    'labelled row).')
JUDGE_VALIDATIONS_ERROR_GAPS = _check(
    "judge_validations", "judge_validations_error_gaps",
    "Warning: on some measure, a group's judge error differs from the reference group's enough to change its "
    'gap; each flag names the measure and the group.', blocking=False)

# metric_tables
METRIC_TABLES_RATES_IN_RANGE = _check(
    "metric_tables", "metric_tables_rates_in_range",
    'Rates and every interval in [0, 1], each interval around its rate, n >= 1.')
METRIC_TABLES_RATES_SUM_TO_ONE = _check(
    "metric_tables", "metric_tables_rates_sum_to_one",
    'The label rates of each cell of every label_rates_* table sum to 1.')
METRIC_TABLES_LABELS_IN_TAXONOMY = _check(
    "metric_tables", "metric_tables_labels_in_taxonomy",
    'Every counted label is in the taxonomy and has a judge id.')
METRIC_TABLES_GROUPS_PRESENT = _check(
    "metric_tables", "metric_tables_groups_present",
    'Every judge with counted labels for a model covers every group of that model that some judge has '
    'labelled; a failure lists the missing model x judge x group.')
METRIC_TABLES_PARTITIONS_JUDGED = _check(
    "metric_tables", "metric_tables_partitions_judged",
    'Warning: generations partitions no judge has labelled yet (e.g. another run between its generations and '
    'judgments steps); in no rate until their judgments are staged and the next build runs.', blocking=False)
METRIC_TABLES_COMPARISONS_VALID = _check(
    "metric_tables", "metric_tables_comparisons_valid",
    'Group and model comparisons: p-values and adjusted p-values in [0, 1], adjusted >= raw, each gap inside '
    'its interval.')
METRIC_TABLES_NO_ORPHAN_JUDGMENTS = _check(
    "metric_tables", "metric_tables_no_orphan_judgments",
    'Warning: stored labels of replaced responses, which are not counted.', blocking=False)
METRIC_TABLES_ONE_CONFIG_PER_MODEL = _check(
    "metric_tables", "metric_tables_one_config_per_model",
    "Warning: a model's groups were generated under several sampling configs or designs; each config is its "
    'own cell.', blocking=False)
METRIC_TABLES_REFERENCE_GROUP_PRESENT = _check(
    "metric_tables", "metric_tables_reference_group_present",
    'Warning: cells without the reference group, whose gaps are NULL.', blocking=False)
METRIC_TABLES_JUDGE_TABLES_VALID = _check(
    "metric_tables", "metric_tables_judge_tables_valid",
    'Judge validation figures and corrected rates in range; each corrected rate inside its interval.')
METRIC_TABLES_DESIGN_COMPLETE = _check(
    "metric_tables", "metric_tables_design_complete",
    'Warning: cells whose template x name grid is incomplete, per group (names, templates, missing prompts); '
    'their comparisons use the templates both groups share and say so.', blocking=False)
METRIC_TABLES_KEYS_UNIQUE = _check(
    "metric_tables", "metric_tables_keys_unique",
    'Every metric table holds one row per its declared key (the grain in its comment); a failure names the '
    'table and a repeated key.')
METRIC_TABLES_CHECKPOINT_REGRESSION = _check(
    "metric_tables", "metric_tables_checkpoint_regression",
    'Regression gate (never stops the build; warning unless QOS_GATE_SEVERITY=error): the newest checkpoint '
    "of each checkpoint family fails when a group's primary gap vs the reference group grew against the "
    'previous checkpoint with an adjusted paired p below QOS_GATE_LEVEL (0.05), or exceeds QOS_GATE_CEILING; '
    'names the group, the change with its interval and outputs that changed label.', blocking=False)
