"""Ingest: responses produced elsewhere (the pilot CSV of Chehbouni et al., or any CSV/JSONL with prompt
and response) turned into generations partitions, and their human labels into judgments.

``reading``: files -> frames; ``recorded``: frames -> per-group partitions, checked like generated ones.
"""
