"""qos-pipeline: audit chat LLMs for quality-of-service harms per demographic group.

Pure modules (design, generation, judges, warehouse, metrics) import neither dagster nor torch at
import time; Dagster objects live in ``qos_pipeline.defs`` and are loaded by ``qos_pipeline.definitions``.
"""

__version__ = "0.1.0"
