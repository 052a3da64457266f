-- Macros of every build (the tables themselves are declared in qos_pipeline/tables and metrics/declared*.py).

-- 95% Wilson score interval for k successes out of n, clamped so that ci_low <= k/n <= ci_high exactly
-- (the closed form is off by rounding error at k = 0 and k = n).
CREATE MACRO wilson_low(k, n) AS least(k / n, greatest(0.0,
    (k / n + 1.96 ^ 2 / (2 * n) - 1.96 * sqrt(k / n * (1 - k / n) / n + 1.96 ^ 2 / (4 * n * n))) / (1 + 1.96 ^ 2 / n)));
CREATE MACRO wilson_high(k, n) AS greatest(k / n, least(1.0,
    (k / n + 1.96 ^ 2 / (2 * n) + 1.96 * sqrt(k / n * (1 - k / n) / n + 1.96 ^ 2 / (4 * n * n))) / (1 + 1.96 ^ 2 / n)));
-- The risk ratio, risk_ratio(k, n, k_ref, n_ref), is registered by the build from Python
-- (qos_pipeline.metrics.stats.compare.risk_ratio), so SQL and the statistics share one definition.
