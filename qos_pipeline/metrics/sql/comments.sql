-- What every analyst-facing table and view holds: COMMENT ON, read back with duckdb_tables() / duckdb_columns().
COMMENT ON VIEW judged IS 'One row per (generation, judge): the grain every metric table aggregates.';
