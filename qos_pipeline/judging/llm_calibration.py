"""What the `llm` judge does with the option scores: calibrate them, and notice when the judge model
would rather say something else than a letter (it refuses to judge, or answers off the rubric).

Calibration (contextual calibration, Zhao et al. 2021, "Calibrate Before Use"): a judge model prefers
some option letters whatever the response (a prior over the letters from the rubric's wording, the
letters' frequency, the last example's letter). That prior is measured on content-free items (the
rubric with "N/A", an empty item, "[MASK]") and divided out: p_cal(label) ~ p(label | item) / p(label |
content-free), renormalized over the six labels (the prior smoothed with 1% of the uniform one). It
needs no labelled data and one extra forward pass per content-free item, once per loaded judge. What
it fixes is the letter bias (the label the judge returns); it does not make the confidence match
accuracy, which needs labelled data (temperature scaling on a validation file), so the scores are best
read as a ranking with the prior removed. Ties (a judge whose letters do not depend on the item at all)
fall back to the raw preference.

Judge refusals: a judge model asked about responses that discuss terrorism or crime may itself refuse
("I cannot classify this content"). After the answer prefix such a model puts little probability on
the option letters; an item whose letters get less than ``MIN_OPTION_MASS`` is ``unjudged``, never
forced onto the likeliest letter, and a short greedy continuation says what the judge wanted to say:
refusal wording makes it a judge refusal, anything else an off-rubric answer. Pure (torch lazily).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

MIN_OPTION_MASS = 0.5  # below this share of probability on the six letters, the judge did not answer
PRIOR_SMOOTHING = 0.01  # share of the uniform distribution mixed into the measured prior
EXPLAIN_TOKENS = 16  # tokens of the judge's own continuation kept as the reason of an unjudged item
CONTENT_FREE = (("N/A", "N/A"), ("", ""), ("[MASK]", "[MASK]"))
"""(sentence, response) pairs with no content: what the judge says about them is its prior."""
JUDGE_REFUSAL = re.compile(
    r"\b(?:i|we) (?:cannot|can ?not|can't|won't|will not|am unable|'m unable|am not able|'m not able|must decline)"
    r"|\bsorry\b|\bapologi[sz]e\b|\bas an ai\b|\bnot (?:appropriate|comfortable|able)\b|\bi'?m (?:unable|afraid)\b",
    re.IGNORECASE,
)


def softmax(logprobs: Sequence[float]) -> list[float]:
    """The probabilities of ``logprobs`` (normalized, overflow-safe)."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def option_mass(logprobs: Sequence[float]) -> float:
    """Probability the judge puts on the option letters at all (log-probabilities over the whole vocabulary)."""
    return float(sum(math.exp(lp) for lp in logprobs))


def prior_from(rows: Sequence[Sequence[float]]) -> list[float]:
    """The judge's prior over the options: the mean distribution over content-free items."""
    dists = [softmax(row) for row in rows]
    return [sum(d[k] for d in dists) / len(dists) for k in range(len(dists[0]))]


def calibrate(raw: Sequence[float], prior: Sequence[float] | None) -> list[float]:
    """``raw`` divided by ``prior``, renormalized (``raw`` unchanged without a prior). The prior is mixed
    with ``PRIOR_SMOOTHING`` of the uniform distribution first: a letter the judge never says on
    content-free items (p ~ 1e-20) would otherwise be lifted without bound by noise."""
    if prior is None:
        return list(raw)
    k = len(prior)
    lifted = [r / ((1 - PRIOR_SMOOTHING) * p + PRIOR_SMOOTHING / k) for r, p in zip(raw, prior)]
    total = sum(lifted)
    return [v / total for v in lifted]


def best(calibrated: Sequence[float], raw: Sequence[float]) -> int:
    """The calibrated argmax; exact ties (no information in the item) go to the raw preference."""
    return max(range(len(calibrated)), key=lambda k: (round(calibrated[k], 12), raw[k]))


def continuation(model: Any, tokenizer: Any, ids: Sequence[int], max_new_tokens: int = EXPLAIN_TOKENS) -> str:
    """The judge's own greedy continuation after the answer prefix: what it says instead of a letter."""
    import torch

    device = next(model.parameters()).device
    inputs = torch.tensor([list(ids)], dtype=torch.long, device=device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        out = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=pad)
    return " ".join(tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).split())


def why_unjudged(mass: float, said: str) -> str:
    """The reason of an item the judge did not answer with a letter."""
    kind = "judge refusal" if JUDGE_REFUSAL.search(said) else "off-rubric answer"
    return (f"{kind}: the judge put {mass:.2f} of its probability on the option letters (< {MIN_OPTION_MASS}) "
            f"and would say {said[:80]!r}")
