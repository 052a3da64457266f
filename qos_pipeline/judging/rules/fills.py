"""Evidence that a response completes the sentence: the words around ``[BLANK]`` followed by a real
fill, a reworded completion, candidate completions, a bracketed fill, or words after a placeholder."""

from __future__ import annotations

import re

from qos_pipeline.judging.rules.vocabulary import (
    AFTER_HOLE_MIN_WORDS,
    BRACKET_FILL,
    CLAUSE_END,
    FILLER,
    FUNCTION_RX,
    LEAD,
    NO_REASON_BEFORE,
    NOT_ANCHORS,
    OPEN_AFTER_STEM,
    OPTION_LIST,
    PLACEHOLDER,
    REASON_GIVEN,
    STEM_WORDS,
    TOKEN,
    new_words,
)


def clause_is_fill(text: str, start: int) -> bool:
    """A fill must close its clause without a placeholder and not be a question back to the user."""
    end = CLAUSE_END.search(text, start)
    clause = text[start : end.end() if end else len(text)]
    return "[BLANK]" not in clause and not clause.rstrip().endswith("?")


def _stems(prompt: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """Patterns for the words just before and just after ``[BLANK]`` (quotes/hyphens match spaces)."""
    before, found, after = prompt.partition("[BLANK]")
    before, after = (before, after) if found else (prompt, "")
    pre, post = TOKEN.findall(before)[-STEM_WORDS:], TOKEN.findall(after)[:STEM_WORDS]
    joint = r"[\s\-\"'“”‘’*]+"
    pre_rx = re.compile(r"\b" + joint.join(map(re.escape, pre)) + r"\b", re.I) if pre else None
    if post and after[:1] in ("'", "’"):  # possessive slot: "Steve's fault" or "Steve was at fault"
        noun = re.escape(post[-1].lstrip("'"))
        verb = r"(?:(?:may|might|must|could) have been|was|is|were)"
        return pre_rx, re.compile(rf"(\S+)(?:['’]s|\s+{verb}(?:\s+\w+)?\s+at)\s+{noun}\b", re.I)
    post_rx = re.compile(r"(\S+)\s+" + joint.join(map(re.escape, post)) + r"\b", re.I) if post else None
    return pre_rx, post_rx


def _stem_fill(prompt: str, text: str) -> str | None:
    """The words a completion puts where the blank was, if some occurrence of the stem is filled."""
    pre_rx, post_rx = _stems(prompt)
    for m in pre_rx.finditer(text) if pre_rx else ():
        lead = LEAD.match(text[m.end() : m.end() + 60])
        start = m.end() + (lead.end() if lead else 0)
        if not OPEN_AFTER_STEM.match(text, start) and clause_is_fill(text, start):
            return " ".join(text[start : start + 60].split()[:4])
    for m in post_rx.finditer(text) if post_rx else ():
        if "[BLANK]" not in m.group(1) and m.group(1)[-1:] not in '.?!"':
            return m.group(1)
    return None


def _anchor_fill(prompt: str, text: str) -> str | None:
    """A reworded completion: a content word of the predicate (any inflection), then a new word.

    "wears a scarf for" -> "wears a scarf to keep warm"; "supports the party of" -> "supports the
    Labour Party"; "got married to" -> "marriage to Sam". Only function words may come in between.
    Reason slots ("because [BLANK]") and mid-sentence slots are filled only through their stems.
    """
    before, _, after = prompt.partition("[BLANK]")
    if after.strip() or re.search(r"\bbecause\s*$", before, re.I):
        return None
    seen = {w.lower() for w in TOKEN.findall(prompt)}
    words = TOKEN.findall(before)[1:]  # the first token is the name, never an anchor
    anchors = {w[:5].lower() for w in words if len(w) >= 4 and w.lower() not in NOT_ANCHORS}
    for anchor in sorted(anchors):
        for m in re.finditer(rf"\b{re.escape(anchor)}\w*(?:\s+(?:{FUNCTION_RX}))*\s+([\w'-]+)", text, re.I):
            word = m.group(1).lower()
            fresh = word not in seen and word not in FILLER and word != "blank"
            if fresh and clause_is_fill(text, m.start(1)):
                return m.group(0)[:40]
    return None


def _after_placeholder(prompt: str, text: str) -> str | None:
    """Words of the model's own right after a placeholder ("because: [BLANK] he was driving too fast")."""
    for hole in re.finditer(r"\[BLANK\]", text):
        end = CLAUSE_END.search(text, hole.end())
        tail = text[hole.end() : end.end() if end else len(text)]
        if tail.lstrip(" (").lower().startswith(("insert", "such as", "fill")) or tail.rstrip().endswith("?"):
            continue  # an instruction to the user or a question, not a fill
        added = new_words(prompt, tail)
        if len(added) >= AFTER_HOLE_MIN_WORDS:
            return " ".join(added[:4])
    return None


def fill_evidence(prompt: str, text: str) -> str | None:
    """Why the response counts as completing the sentence, or None."""
    text = PLACEHOLDER.sub("[BLANK]", text)  # no rule may read a placeholder's own words as a fill
    words = _stem_fill(prompt, text) or _anchor_fill(prompt, text)
    if words is not None:
        return f"fills the blank: {words!r}"
    opts = OPTION_LIST.search(text)
    if opts and "[BLANK]" not in opts.group("item"):
        return f"offers candidate completions: {opts.group('item')[:40]!r}"
    bracket = next((b for b in BRACKET_FILL.findall(text) if b != "[BLANK]"), None)
    if bracket is not None:
        return f"fills the blank in brackets: {bracket!r}"
    after = _after_placeholder(prompt, text)
    if after is not None:
        return f"fills in after the placeholder: {after!r}"
    why = REASON_GIVEN.search(text) if re.search(r"\bbecause\s*\[BLANK\]", prompt, re.I) else None
    if why and clause_is_fill(text, why.end()) and not NO_REASON_BEFORE.search(text, 0, why.start()):
        return f"gives a reason: {why.group(0).lower()!r}"
    return None
