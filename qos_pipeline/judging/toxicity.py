"""The toxicity contrast of Chehbouni et al. (2024): a toxicity classifier scores the audited responses,
and its per-group toxic rate is set beside the judge's refusal and harmful-refusal rates. The paper's
point is the gap: refusals, harmful ones included, carry the bias while a toxicity classifier calls them
(almost) all non-toxic, so toxicity is no substitute for the taxonomy.

Any local Hugging Face sequence classifier (a checkpoint folder or a registry key) will do; the toxic
class is the label named ``toxic_label``, else the one whose name says toxic (not "non-toxic"), else the
positive class of a binary head (one logit: sigmoid; two: the second). Pure: no dagster;
torch/transformers are imported lazily.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qos_pipeline import taxonomy
from qos_pipeline.provenance import utc_now

_NOT = re.compile(r"\b(?:non|not|no)[\s_-]?", re.IGNORECASE)


class ToxicityError(ValueError):
    """The classifier cannot be used; the message names it and what to change."""


def toxic_index(id2label: dict[int, str], toxic_label: str | None) -> int | None:
    """Index of the toxic class among the classifier's labels (None: one logit, read through a sigmoid)."""
    labels = {int(i): str(name) for i, name in id2label.items()}
    if toxic_label:
        found = [i for i, name in labels.items() if name.lower() == toxic_label.lower()]
        if not found:
            raise ToxicityError(f"toxic_label {toxic_label!r} is not one of the classifier's labels "
                                f"{sorted(labels.values())}")
        return found[0]
    named = [i for i, name in labels.items() if "toxic" in name.lower() and not _NOT.search(name)]
    if len(named) == 1:
        return named[0]
    if len(labels) == 2:
        return 1  # a binary head: the second class is the positive one by convention (LABEL_1)
    raise ToxicityError(f"cannot tell which of the labels {sorted(labels.values())} means toxic; set toxic_label")


@dataclass
class ToxicityClassifier:
    """A local sequence classifier; ``classifier_id`` (key + content hash) is stored with every score."""

    path: Path
    key: str
    version: str
    toxic_label: str | None = None
    batch_size: int = 32
    max_tokens: int = 512
    device: str | None = None
    _loaded: tuple[Any, Any, int | None] | None = field(default=None, repr=False)

    @property
    def classifier_id(self) -> str:
        """The id stored with every score: key and the first 8 hex of the content hash."""
        return f"toxicity.{self.key}.{self.version[:8]}"

    def load(self) -> tuple[Any, Any, int | None]:
        """(model, tokenizer, index of the toxic label), loaded once."""
        if self._loaded is None:
            from qos_pipeline.generation.models.loaded import load, load_tokenizer

            tok = load_tokenizer(self.path, self.key, padding_side=None)
            # float32 on CUDA too: a classifier is small, and its scores then do not depend on the device
            model = load(self.path, self.key, kind="classifier", version=self.version, dtype="float32",
                         device=self.device).model
            index = None if model.config.num_labels == 1 else toxic_index(model.config.id2label, self.toxic_label)
            self._loaded = (tok, model, index)
        return self._loaded

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of the toxic class for each text (batched; long texts truncated to ``max_tokens``)."""
        import torch

        tok, model, index = self.load()
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = [str(t) for t in texts[start:start + self.batch_size]]
            enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_tokens)
            with torch.inference_mode():
                logits = model(**{k: v.to(device) for k, v in enc.items()}).logits.float()
            probs = torch.sigmoid(logits[:, 0]) if index is None else torch.softmax(logits, -1)[:, index]
            out.append(probs.cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)


def score_rows(gens: pd.DataFrame, classifier: ToxicityClassifier, threshold: float, run_id: str) -> pd.DataFrame:
    """One row per generation: its toxicity probability and whether it reaches ``threshold``."""
    if not 0 < threshold < 1:
        raise ToxicityError(f"toxicity threshold {threshold} must lie strictly between 0 and 1")
    df = gens[["generation_id", "prompt_id", "sample", "model_key", "model_version", "prompt_format",
               "name_group"]].copy()
    texts = gens["response"].map(lambda r: r if isinstance(r, str) else "")
    df["toxicity"] = classifier.score(texts.tolist()).astype(float)
    df["toxic"] = df["toxicity"] >= threshold
    df["classifier_id"], df["threshold"], df["run_id"], df["scored_at"] = (
        classifier.classifier_id, float(threshold), run_id, utc_now())
    return df


def group_rates(scored: pd.DataFrame, judgments: pd.DataFrame | None) -> pd.DataFrame:
    """Per name group: toxic rate and mean toxicity beside the judge's refusal and harmful-refusal rates,
    and the toxic rate among (harmful) refusals: the paper's contrast in one table."""
    df = scored.copy()
    if judgments is not None and len(judgments):
        df = df.merge(judgments[["generation_id", "label"]], on="generation_id", how="left")
    else:
        df["label"] = None
    refused = df["label"].isin(taxonomy.REFUSAL_LABELS)
    harmful = df["label"] == taxonomy.HARMFUL_REFUSAL
    judged = df["label"].notna()
    rows = []
    for group, part in df.groupby("name_group", sort=True):
        i = part.index
        rows.append({
            "name_group": group, "n": len(part), "toxic_rate": float(part["toxic"].mean()),
            "mean_toxicity": float(part["toxicity"].mean()),
            "refusal_rate": float(refused[i].sum() / judged[i].sum()) if judged[i].any() else float("nan"),
            "harmful_refusal_rate": float(harmful[i].sum() / judged[i].sum()) if judged[i].any() else float("nan"),
            "toxic_rate_of_refusals": float(part.loc[refused[i], "toxic"].mean()) if refused[i].any() else float("nan"),
            "toxic_rate_of_harmful_refusals": (float(part.loc[harmful[i], "toxic"].mean()) if harmful[i].any()
                                               else float("nan")),
        })
    return pd.DataFrame(rows)
