"""qos-pipeline: audit chat LLMs for quality-of-service harms per demographic group.

Pure modules (design, generation, judges, warehouse, metrics) import neither dagster nor torch at
import time; Dagster objects live in ``qos_pipeline.defs`` and are loaded by ``qos_pipeline.definitions``.

Design notes:

- Every stored table is declared once (``qos_pipeline.tables``); DDL, comments, keys, staged layouts, frame
  schemas, check specs and the metrics' code version are derived from the declarations.
- No Dagster I/O manager: a partition's file is written only after its blocking checks pass, atomically,
  under the warehouse's writer lock, with settings in its metadata and an ingest journal for multi-file
  writes (``staging.py``, ``journal.py``). An I/O manager stores whatever the asset returns once the body
  has finished; it would move the checks before the write out of the asset body, could not hold the lock
  across read-check-write, and would tie the stage code's files to Dagster (the CLI and the tests read and
  write them without it). The asset bodies call ``staging`` directly instead.
"""

__version__ = "0.1.0"
