"""Dagster objects of qos-pipeline; ``qos_pipeline.definitions`` loads them."""
