-- Base tables, loaded in full from the staged Parquet partitions on every build.
-- qos.duckdb is derived data: staging/ is the source of truth, so keep your own tables elsewhere.
-- Keys (generation_id; generation_id + judge_id; prompt_id) are checked before loading (build._check_unique,
-- naming the files that repeat one) rather than by index constraints, which would cost an index build per load.

CREATE TABLE prompts (
    prompt_id VARCHAR NOT NULL, design VARCHAR NOT NULL, template_id VARCHAR NOT NULL,
    template_name VARCHAR NOT NULL, template_text VARCHAR NOT NULL, target_group VARCHAR NOT NULL, name VARCHAR NOT NULL,
    name_group VARCHAR NOT NULL, gender VARCHAR NOT NULL, popularity VARCHAR NOT NULL,
    prompt_text VARCHAR NOT NULL, run_id VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE generations (
    generation_id VARCHAR NOT NULL, prompt_id VARCHAR NOT NULL, sample INTEGER NOT NULL,
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    system_prompt VARCHAR, gen_config VARCHAR NOT NULL, gen_config_hash VARCHAR NOT NULL,
    seed BIGINT, response VARCHAR NOT NULL, finish_reason VARCHAR NOT NULL, n_new_tokens INTEGER,
    source VARCHAR NOT NULL, cache_key VARCHAR, recorded_label VARCHAR,
    design VARCHAR NOT NULL, template_id VARCHAR NOT NULL, template_name VARCHAR NOT NULL, template_text VARCHAR NOT NULL,
    target_group VARCHAR NOT NULL, name VARCHAR NOT NULL, name_group VARCHAR NOT NULL,
    gender VARCHAR NOT NULL, popularity VARCHAR NOT NULL, prompt_text VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE judgments (
    generation_id VARCHAR NOT NULL, prompt_id VARCHAR NOT NULL, sample INTEGER NOT NULL,
    model_key VARCHAR NOT NULL, model_version VARCHAR NOT NULL, prompt_format VARCHAR NOT NULL,
    judge_id VARCHAR NOT NULL, label VARCHAR NOT NULL, reason VARCHAR, scores VARCHAR,
    run_id VARCHAR NOT NULL, judged_at TIMESTAMPTZ NOT NULL
);

-- 95% Wilson score interval for k successes out of n, clamped so that ci_low <= k/n <= ci_high exactly
-- (the closed form is off by rounding error at k = 0 and k = n).
CREATE MACRO wilson_low(k, n) AS least(k / n, greatest(0.0,
    (k / n + 1.96 ^ 2 / (2 * n) - 1.96 * sqrt(k / n * (1 - k / n) / n + 1.96 ^ 2 / (4 * n * n))) / (1 + 1.96 ^ 2 / n)));
CREATE MACRO wilson_high(k, n) AS greatest(k / n, least(1.0,
    (k / n + 1.96 ^ 2 / (2 * n) + 1.96 * sqrt(k / n * (1 - k / n) / n + 1.96 ^ 2 / (4 * n * n))) / (1 + 1.96 ^ 2 / n)));
-- The risk ratio, risk_ratio(k, n, k_ref, n_ref), is registered by the build from Python
-- (qos_pipeline.metrics.stats.compare.risk_ratio), so SQL and the statistics share one definition.

-- Human labels of audited outputs (`qos label import`), staged under staging/human_labels/model=<key>/.
-- Keyed by (generation_id, annotator): one label per annotator and output; a relabel replaced the old one.
CREATE TABLE human_labels (
    generation_id VARCHAR NOT NULL, model_key VARCHAR NOT NULL, label VARCHAR NOT NULL, annotator VARCHAR NOT NULL,
    source_file VARCHAR, imported_at TIMESTAMPTZ NOT NULL, import_id VARCHAR NOT NULL
);
