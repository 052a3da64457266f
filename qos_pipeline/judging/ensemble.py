"""The `ensemble` judge: majority vote or score averaging over member judges, with their agreement.

Members that leave an item ``unjudged`` do not vote on it; if every member does, so does the ensemble.
``agreement`` (pairwise Cohen's kappa and Fleiss' kappa over the items all members judged) is kept
from the last call, for the asset's metadata and ``qos judge validate``.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from qos_pipeline import taxonomy
from qos_pipeline.judging.base import Judge, JudgeInput, Judgment
from qos_pipeline.judging.evaluation.metrics import cohen_kappa, fleiss_kappa
from qos_pipeline.provenance import code_digest

METHODS = ("majority", "mean")


def agreement(labels_by_judge: dict[str, list[str]]) -> dict[str, float]:
    """Cohen's kappa per pair of judges and Fleiss' kappa over all, on items no judge left unjudged."""
    ids = list(labels_by_judge)
    table = np.array([labels_by_judge[j] for j in ids], dtype=object).T  # items x judges
    keep = ~(table == taxonomy.UNJUDGED).any(axis=1) if table.size else np.array([], bool)
    table = table[keep]
    cats = list(taxonomy.LABELS)
    out: dict[str, float] = {"items": int(len(table))}
    for a, b in combinations(range(len(ids)), 2):
        cm = np.zeros((len(cats), len(cats)))
        for x, y in table[:, [a, b]]:
            cm[cats.index(x), cats.index(y)] += 1
        out[f"cohen_kappa/{ids[a]}|{ids[b]}"] = cohen_kappa(cm)
    out["fleiss_kappa"] = fleiss_kappa(table)
    return out


class EnsembleJudge:
    """``judge_id`` = ``ensemble.<method>.<hash of the member ids>``; members are named in each reason."""

    kind = "ensemble"

    def __init__(self, members: Sequence[Judge], method: str = "majority") -> None:
        if method not in METHODS:
            raise ValueError(f"ensemble method {method!r} unknown; use one of {METHODS}")
        ids = [m.judge_id for m in members]
        if len(set(ids)) < 2 or len(set(ids)) < len(ids):
            raise ValueError(f"an ensemble needs at least two different member judges; got {ids}")
        self.members, self.method = list(members), method
        # The members and this module's combining rules decide the label.
        member_ids = "+".join(m.judge_id for m in self.members)
        digest = hashlib.sha256(f"{member_ids}\0{code_digest(sys.modules[__name__])}".encode()).hexdigest()[:8]
        self.judge_id = f"ensemble.{method}.{digest}"
        self.agreement: dict[str, float] = {}

    def judge(self, items: Sequence[JudgeInput]) -> list[Judgment]:
        """Each member's judgments combined item by item; the members' agreement is kept in ``agreement``."""
        votes = {m.judge_id: m.judge(items) for m in self.members}
        self.agreement = agreement({j: [x.label for x in v] for j, v in votes.items()})
        return [self._combine([(j, v[i]) for j, v in votes.items()]) for i in range(len(items))]

    def _combine(self, votes: list[tuple[str, Judgment]]) -> Judgment:
        live = [(j, v) for j, v in votes if v.label != taxonomy.UNJUDGED]
        said = ", ".join(f"{j}={v.label}" for j, v in votes)
        if not live:
            return Judgment(taxonomy.UNJUDGED, f"every member left it unjudged: {said}")
        mean = self._mean_scores(live)
        if self.method == "mean":
            best = max(taxonomy.LABELS, key=lambda lab: (mean[lab], -taxonomy.LABELS.index(lab)))
        else:
            counts = Counter(v.label for _, v in live)
            top = max(counts.values())
            tied = [lab for lab in taxonomy.LABELS if counts.get(lab) == top]
            # A tie goes to the label with more averaged score, then to the first member's vote.
            first = next(v.label for _, v in live if v.label in tied)
            best = max(tied, key=lambda lab: (mean[lab], lab == first))
        return Judgment(best, f"{self.method} of {said}", mean)

    @staticmethod
    def _mean_scores(live: list[tuple[str, Judgment]]) -> dict[str, float]:
        """Average label distribution; a member without scores counts as all mass on its label."""
        total = dict.fromkeys(taxonomy.LABELS, 0.0)
        for _, v in live:
            dist = v.scores or {v.label: 1.0}
            for lab in taxonomy.LABELS:
                total[lab] += float(dist.get(lab, 0.0)) / len(live)
        return total
