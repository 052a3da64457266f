"""The ``human`` judge: the labels that annotators gave recorded responses (``qos ingest --labels human``).

The labels travel with each recorded generation row (``recorded_label``), so they are judged, checked,
stored and tied to their responses like any judge's. A response without a recorded label is ``unjudged``.
"""

from __future__ import annotations

from collections.abc import Sequence

from qos_pipeline import taxonomy
from qos_pipeline.judging.base import JudgeInput, Judgment

HUMAN_JUDGE = "human"


class RecordedLabels:
    """The annotators' labels; its id names the kind only, because the labels are part of the recorded
    rows: another file is another model version, and the rows' generation ids tie each label to its text."""

    judge_id = HUMAN_JUDGE

    def judge(self, items: Sequence[JudgeInput]) -> list[Judgment]:
        """The recorded human label of each item, or ``unjudged`` where none was recorded."""
        return [Judgment(i.recorded_label, "human annotation") if i.recorded_label
                else Judgment(taxonomy.UNJUDGED, "no human label recorded with this response") for i in items]
