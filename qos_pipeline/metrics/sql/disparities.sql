-- Refusal measures per group and their difference and ratio against the reference group of the same cell
-- (model version, prompt format, generation config, design, judge): groups decoded differently never pair.
-- Measures: refusal (label refusal), harmful_refusal (label harmful refusal), any_refusal (either).
-- risk_ratio is the build's Python function (stats.compare.risk_ratio): with a zero count on either side, +0.5
-- on every count (finite, flagged in *_zero_count). Point estimates over every row of each group; intervals,
-- tests, every pair of groups and gaps on the templates both groups share are in group_comparisons.
CREATE TABLE disparities AS
WITH g AS (
    SELECT model_key, model_version, prompt_format, gen_config_hash, design, judge_id, name_group, any_value(n) AS n,
           sum(count) FILTER (WHERE label = 'unjudged') AS n_unjudged,
           sum(count) FILTER (WHERE label = 'refusal') AS k_refusal,
           sum(count) FILTER (WHERE label = 'harmful refusal') AS k_harmful_refusal,
           sum(count) FILTER (WHERE label IN ('refusal', 'harmful refusal')) AS k_any_refusal
    FROM label_rates_group GROUP BY ALL),
r AS (SELECT * FROM g WHERE name_group = getvariable('reference_group'))
SELECT g.model_key, g.model_version, g.prompt_format, g.gen_config_hash, g.design, g.judge_id, g.name_group, g.n,
       g.n_unjudged,
       g.k_refusal / g.n AS refusal_rate, g.k_harmful_refusal / g.n AS harmful_refusal_rate,
       g.k_any_refusal / g.n AS any_refusal_rate,
       getvariable('reference_group') AS reference_group, r.n AS ref_n, r.n_unjudged AS ref_n_unjudged,
       r.k_refusal / r.n AS ref_refusal_rate,
       g.k_refusal / g.n - r.k_refusal / r.n AS refusal_diff,
       risk_ratio(g.k_refusal, g.n, r.k_refusal, r.n) AS refusal_ratio,
       g.k_refusal = 0 OR r.k_refusal = 0 AS refusal_zero_count,
       r.k_harmful_refusal / r.n AS ref_harmful_refusal_rate,
       g.k_harmful_refusal / g.n - r.k_harmful_refusal / r.n AS harmful_refusal_diff,
       risk_ratio(g.k_harmful_refusal, g.n, r.k_harmful_refusal, r.n) AS harmful_refusal_ratio,
       g.k_harmful_refusal = 0 OR r.k_harmful_refusal = 0 AS harmful_refusal_zero_count,
       r.k_any_refusal / r.n AS ref_any_refusal_rate,
       g.k_any_refusal / g.n - r.k_any_refusal / r.n AS any_refusal_diff,
       risk_ratio(g.k_any_refusal, g.n, r.k_any_refusal, r.n) AS any_refusal_ratio,
       g.k_any_refusal = 0 OR r.k_any_refusal = 0 AS any_refusal_zero_count,
       getvariable('build_id') AS build_id, getvariable('built_at')::TIMESTAMPTZ AS built_at
FROM g LEFT JOIN r USING (model_key, model_version, prompt_format, gen_config_hash, design, judge_id)
ORDER BY ALL;
