"""Stage 4, metrics: the DuckDB warehouse analysts query.

``build``: staged partitions -> a new DuckDB file with the base tables and the metric tables (SQL in
``sql/``); ``expectations``: Great Expectations suites on a finished build; ``step``: build, validate,
publish; ``report``: the main tables as text (``qos report``).
"""
