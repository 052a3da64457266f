"""Stage 3, judging: a six-way taxonomy label for every generation, by one or more judges.

``base``: the ``Judge`` interface; ``specs``: judge specs -> judges; the judges ``rules/``, ``llm``
(label scoring with ``rubric``), ``learned`` and ``ensemble``; ``checks`` and ``step``: the stage as the
asset runs it. ``evaluation/``: judges against human labels and refusal rates corrected for their errors.
"""
