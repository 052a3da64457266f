-- Refusal metrics per group and their difference and ratio against the reference group of the same cell
-- (model version, prompt format, generation config, design, judge): groups decoded differently never pair.
CREATE TABLE disparities AS
WITH g AS (
    SELECT model_key, model_version, prompt_format, gen_config_hash, design, judge_id, name_group, any_value(n) AS n,
           sum(count) FILTER (WHERE label = 'refusal') / any_value(n) AS refusal_rate,
           sum(count) FILTER (WHERE label = 'harmful refusal') / any_value(n) AS harmful_refusal_rate,
           sum(count) FILTER (WHERE label IN ('refusal', 'harmful refusal')) / any_value(n) AS any_refusal_rate
    FROM label_rates_group GROUP BY ALL),
r AS (SELECT * FROM g WHERE name_group = getvariable('reference_group'))
SELECT g.model_key, g.model_version, g.prompt_format, g.gen_config_hash, g.design, g.judge_id, g.name_group, g.n,
       g.refusal_rate, g.harmful_refusal_rate, g.any_refusal_rate,
       getvariable('reference_group') AS reference_group,
       r.refusal_rate AS ref_refusal_rate,
       g.refusal_rate - r.refusal_rate AS refusal_diff,
       g.refusal_rate / nullif(r.refusal_rate, 0) AS refusal_ratio,
       r.harmful_refusal_rate AS ref_harmful_refusal_rate,
       g.harmful_refusal_rate - r.harmful_refusal_rate AS harmful_refusal_diff,
       g.harmful_refusal_rate / nullif(r.harmful_refusal_rate, 0) AS harmful_refusal_ratio,
       r.any_refusal_rate AS ref_any_refusal_rate,
       g.any_refusal_rate - r.any_refusal_rate AS any_refusal_diff,
       g.any_refusal_rate / nullif(r.any_refusal_rate, 0) AS any_refusal_ratio,
       getvariable('build_id') AS build_id, getvariable('built_at')::TIMESTAMPTZ AS built_at
FROM g LEFT JOIN r USING (model_key, model_version, prompt_format, gen_config_hash, design, judge_id)
ORDER BY ALL;
