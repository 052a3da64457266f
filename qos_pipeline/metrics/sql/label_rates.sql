-- Template for every label_rates_* table: share of each label per cell ({cell}) x {dims}. A cell never mixes
-- model versions, prompt formats, generation configs, designs or judges.
-- Every label of the taxonomy gets a row (count 0 included), so rates sum to 1 within a cell.
CREATE TABLE {table} AS
WITH src AS ({source}),
cells AS (
    SELECT {cell}{dims}, count(*) AS n,
           string_agg(DISTINCT generation_run_id, ',' ORDER BY generation_run_id) AS generation_run_ids,
           string_agg(DISTINCT judgment_run_id, ',' ORDER BY judgment_run_id) AS judgment_run_ids
    FROM src GROUP BY ALL),
counts AS (
    SELECT {cell}{dims}, label, count(*) AS k
    FROM src GROUP BY ALL),
grid AS (SELECT * FROM cells CROSS JOIN labels)
SELECT {cell}{dims}, label, n,
       coalesce(k, 0) AS count, coalesce(k, 0) / n AS rate,
       wilson_low(coalesce(k, 0), n) AS wilson_low, wilson_high(coalesce(k, 0), n) AS wilson_high,
       generation_run_ids, judgment_run_ids,
       getvariable('build_id') AS build_id, getvariable('built_at')::TIMESTAMPTZ AS built_at
FROM grid LEFT JOIN counts USING ({cell}{dims}, label)
ORDER BY ALL;
