-- Tables filled by qos_pipeline.metrics.analysis (cluster bootstrap, permutation tests, corrections).
-- Cell = model_key, model_version, prompt_format, gen_config_hash, design, judge_id. Measures: refusal (label
-- refusal), harmful_refusal (label harmful refusal), any_refusal (either); the same names everywhere.

CREATE TABLE group_comparisons (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    gen_config_hash VARCHAR NOT NULL, design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, is_reference BOOLEAN NOT NULL,
    family VARCHAR NOT NULL, templates INTEGER NOT NULL, shared_templates INTEGER NOT NULL,
    names INTEGER NOT NULL, names_vs INTEGER NOT NULL,
    k BIGINT NOT NULL, n BIGINT NOT NULL, rate DOUBLE, n_unjudged BIGINT NOT NULL, n_dropped BIGINT NOT NULL,
    k_vs BIGINT NOT NULL, n_vs BIGINT NOT NULL, rate_vs DOUBLE, n_unjudged_vs BIGINT NOT NULL,
    n_dropped_vs BIGINT NOT NULL,
    diff DOUBLE, diff_ci_low DOUBLE, diff_ci_high DOUBLE, diff_ci_tn_low DOUBLE, diff_ci_tn_high DOUBLE,
    ratio DOUBLE, log_ratio DOUBLE, log_ratio_ci_low DOUBLE, log_ratio_ci_high DOUBLE,
    log_ratio_ci_tn_low DOUBLE, log_ratio_ci_tn_high DOUBLE, ratio_zero_count BOOLEAN NOT NULL,
    p_value DOUBLE, p_method VARCHAR NOT NULL, permutations INTEGER NOT NULL, p_floor DOUBLE,
    p_adjusted DOUBLE, p_adjust_method VARCHAR NOT NULL, family_size INTEGER NOT NULL, p_adjusted_floor DOUBLE,
    names_needed INTEGER,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

-- The model-based cross-check of the primary family (qos_pipeline/metrics/stats/mixed.py).
CREATE TABLE group_effects_mixed (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    gen_config_hash VARCHAR NOT NULL, design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL,
    log_odds DOUBLE, log_odds_se DOUBLE, log_odds_ci_low DOUBLE, log_odds_ci_high DOUBLE, odds_ratio DOUBLE,
    df INTEGER NOT NULL, sd_template DOUBLE, sd_name DOUBLE, converged BOOLEAN NOT NULL, method VARCHAR NOT NULL,
    design_agrees BOOLEAN, note VARCHAR,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

CREATE TABLE name_sensitivity (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    gen_config_hash VARCHAR NOT NULL, design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, name VARCHAR NOT NULL, gender VARCHAR, popularity VARCHAR,
    k BIGINT NOT NULL, n BIGINT NOT NULL, rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
    rank_in_group INTEGER NOT NULL, names_in_group INTEGER NOT NULL, gap_vs_reference DOUBLE,
    gap_without_name DOUBLE, shift DOUBLE, most_extreme BOOLEAN NOT NULL, reference_group VARCHAR NOT NULL,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

CREATE TABLE model_comparisons (
    model_key_a VARCHAR NOT NULL, model_version_a VARCHAR NOT NULL, gen_config_hash_a VARCHAR NOT NULL,
    design_a VARCHAR NOT NULL,
    model_key_b VARCHAR NOT NULL, model_version_b VARCHAR NOT NULL, gen_config_hash_b VARCHAR NOT NULL,
    design_b VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, family VARCHAR NOT NULL,
    shared_templates INTEGER NOT NULL,
    gap_a DOUBLE, gap_b DOUBLE, diff_of_gaps DOUBLE, ci_low DOUBLE, ci_high DOUBLE, ci_tn_low DOUBLE,
    ci_tn_high DOUBLE, p_value DOUBLE, flips INTEGER NOT NULL, p_adjusted DOUBLE, p_adjust_method VARCHAR NOT NULL,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

-- Keyed like disparities (cell + name_group) plus the validation whose error rates are used.
CREATE TABLE refusal_rates_corrected (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    gen_config_hash VARCHAR NOT NULL, design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, name_group VARCHAR NOT NULL,
    n BIGINT NOT NULL, raw_rate DOUBLE NOT NULL, raw_ci_low DOUBLE, raw_ci_high DOUBLE, raw_diff DOUBLE,
    corrected_rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE, corrected_diff DOUBLE, corrected_diff_ci_low DOUBLE,
    corrected_diff_ci_high DOUBLE, reference_group VARCHAR, validation_id VARCHAR NOT NULL,
    validation_scope VARCHAR NOT NULL, sensitivity DOUBLE, specificity DOUBLE, valid_draws INTEGER,
    note VARCHAR, warning VARCHAR, boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL,
    build_id VARCHAR, built_at TIMESTAMPTZ
);

-- Views for analysts (stable names; see COMMENT ON in comments.sql and warehouse/README.md).
CREATE VIEW significant_gaps AS
SELECT * FROM group_comparisons
WHERE is_reference AND p_adjusted < 0.05
ORDER BY model_key, model_version, prompt_format, gen_config_hash, design, judge_id, measure, diff DESC;

CREATE VIEW unjudged_by_group AS
SELECT model_key, model_version, prompt_format, gen_config_hash, design, judge_id, name_group, n,
       count AS n_unjudged, rate AS unjudged_share
FROM label_rates_group WHERE label = 'unjudged'
ORDER BY ALL;

CREATE TABLE annotator_agreement (
    model_key VARCHAR NOT NULL, annotator_a VARCHAR NOT NULL, annotator_b VARCHAR NOT NULL, n INTEGER NOT NULL,
    agreement DOUBLE, kappa DOUBLE, build_id VARCHAR, built_at TIMESTAMPTZ
);

-- Prediction-powered estimates (metrics/stats/ppi.py): judge labels of every output + the human-minus-judge
-- correction on the human-labelled ones, per group; intervals resample templates (ci_*) and names (ci_tn_*).
CREATE TABLE label_rates_ppi (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    gen_config_hash VARCHAR NOT NULL, design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, n INTEGER NOT NULL, n_labelled INTEGER NOT NULL,
    judge_rate DOUBLE, labelled_human_rate DOUBLE, rate DOUBLE, lam DOUBLE,
    ci_low DOUBLE, ci_high DOUBLE, ci_tn_low DOUBLE, ci_tn_high DOUBLE,
    iid_rate DOUBLE, iid_ci_low DOUBLE, iid_ci_high DOUBLE, note VARCHAR,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

CREATE TABLE group_comparisons_ppi (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    gen_config_hash VARCHAR NOT NULL, design VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, is_reference BOOLEAN NOT NULL,
    n INTEGER NOT NULL, n_vs INTEGER NOT NULL, n_labelled INTEGER NOT NULL, n_labelled_vs INTEGER NOT NULL,
    rate DOUBLE, rate_vs DOUBLE, lam DOUBLE, lam_vs DOUBLE, judge_diff DOUBLE,
    diff DOUBLE, diff_ci_low DOUBLE, diff_ci_high DOUBLE, diff_ci_tn_low DOUBLE, diff_ci_tn_high DOUBLE,
    p_value DOUBLE, p_method VARCHAR NOT NULL, permutations INTEGER NOT NULL, p_floor DOUBLE,
    family VARCHAR NOT NULL, p_adjusted DOUBLE, p_adjust_method VARCHAR NOT NULL,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

-- Checkpoint lineage (generation/models/lineage.py: models.lineage.yaml), ordered within each family: by
-- step, then (checkpoints without one) by the time they appeared.
CREATE TABLE checkpoints (
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, checkpoint_family VARCHAR NOT NULL,
    checkpoint_order INTEGER NOT NULL, step BIGINT, order_from VARCHAR NOT NULL, appeared_at TIMESTAMPTZ NOT NULL,
    folder VARCHAR NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

-- Each checkpoint against the previous one of its family and against its first (metrics/stats/checkpoints.py):
-- the columns of model_comparisons, A = the checkpoint, B = the one it is compared with.
CREATE TABLE checkpoint_changes (
    checkpoint_family VARCHAR NOT NULL, against VARCHAR NOT NULL,
    checkpoint_order_a INTEGER NOT NULL, checkpoint_order_b INTEGER NOT NULL,
    model_key_a VARCHAR NOT NULL, model_version_a VARCHAR NOT NULL, gen_config_hash_a VARCHAR NOT NULL,
    design_a VARCHAR NOT NULL,
    model_key_b VARCHAR NOT NULL, model_version_b VARCHAR NOT NULL, gen_config_hash_b VARCHAR NOT NULL,
    design_b VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL, judge_id VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, name_group VARCHAR NOT NULL, vs_group VARCHAR NOT NULL, family VARCHAR NOT NULL,
    shared_templates INTEGER NOT NULL,
    gap_a DOUBLE, gap_b DOUBLE, diff_of_gaps DOUBLE, ci_low DOUBLE, ci_high DOUBLE, ci_tn_low DOUBLE,
    ci_tn_high DOUBLE, p_value DOUBLE, flips INTEGER NOT NULL, p_adjusted DOUBLE, p_adjust_method VARCHAR NOT NULL,
    boot_resamples INTEGER NOT NULL, boot_seed INTEGER NOT NULL, build_id VARCHAR, built_at TIMESTAMPTZ
);

-- The gap of every group vs the reference group over a family's checkpoints, with the group-level interval.
CREATE VIEW checkpoint_trend AS
SELECT c.checkpoint_family, c.checkpoint_order, c.step, c.order_from, model_key, g.model_version,
       g.prompt_format, g.gen_config_hash, g.design, g.judge_id, g.measure, g.name_group, g.vs_group, g.family,
       g.k, g.n, g.rate, g.k_vs, g.n_vs, g.rate_vs, g.diff, g.diff_ci_tn_low, g.diff_ci_tn_high, g.diff_ci_low,
       g.diff_ci_high, g.shared_templates, g.p_value, g.p_adjusted, g.build_id, g.built_at
FROM group_comparisons g JOIN checkpoints c USING (model_key)
WHERE g.is_reference
ORDER BY c.checkpoint_family, g.prompt_format, g.judge_id, g.measure, g.name_group, c.checkpoint_order;
