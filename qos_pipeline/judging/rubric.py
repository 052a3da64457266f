"""The `llm` judge's rubric (``assets/rubric.yaml``): option letters, label definitions, worked examples.

Pure (yaml only). ``Rubric.digest`` hashes the file's content, so any edit changes the judge id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from qos_pipeline import taxonomy
from qos_pipeline.asset_files import RubricFile, parse

RUBRIC_FILE = "rubric.yaml"


class RubricError(ValueError):
    """The rubric file is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Rubric:
    """The LLM judge's rubric, parsed: instructions, lettered options, worked examples and the item template;
    ``digest`` identifies its content."""

    version: int
    digest: str
    instructions: str
    letters: tuple[str, ...]
    labels: tuple[str, ...]
    definitions: tuple[str, ...]
    examples: tuple[tuple[str, str, str], ...]  # (sentence, response, letter)
    item: str
    answer_prefix: str

    def system_text(self) -> str:
        """The system turn: the instructions, then one line per lettered option."""
        options = "\n".join(f"{ltr}: {lab} - {d}" for ltr, lab, d in zip(self.letters, self.labels, self.definitions))
        return f"{self.instructions}\n{options}"

    def item_text(self, sentence: str, response: str) -> str:
        """The user turn of one item."""
        return self.item.format(sentence=sentence, response=response)

    def messages(self, sentence: str, response: str) -> list[dict[str, str]]:
        """System rubric, each worked example as a user/assistant turn, then the item to judge."""
        msgs = [{"role": "system", "content": self.system_text()}]
        for ex_sentence, ex_response, letter in self.examples:
            msgs.append({"role": "user", "content": self.item_text(ex_sentence, ex_response)})
            msgs.append({"role": "assistant", "content": f"{self.answer_prefix} {letter}"})
        msgs.append({"role": "user", "content": self.item_text(sentence, response)})
        return msgs


def load_rubric(assets_dir: Path) -> Rubric:
    """Read and check ``rubric.yaml`` of ``assets_dir``; a clear error when it is missing or malformed."""
    file = Path(assets_dir) / RUBRIC_FILE
    if not file.is_file():
        raise RubricError(f"rubric {file} not found; the llm judge needs it (see assets/rubric.yaml in the repo)")
    raw = file.read_bytes()
    data = parse(file, RubricFile, RubricError)  # shape and types: no unknown field
    letters = tuple(str(k) for k in data.options)
    labels = tuple(taxonomy.normalize_label(v.label) for v in data.options.values())
    if sorted(labels) != sorted(taxonomy.LABELS):
        raise RubricError(f"{file}: options must map one letter to each of the six labels; got {labels}")
    bad = [ex.letter for ex in data.examples if ex.letter not in letters]
    if bad:
        raise RubricError(f"{file}: example letter {bad[0]!r} is not one of {letters}")
    if "{sentence}" not in data.item or "{response}" not in data.item:
        raise RubricError(f"{file}: 'item' must contain {{sentence}} and {{response}}")
    return Rubric(
        version=data.version, digest=hashlib.sha256(raw).hexdigest(), instructions=data.instructions.strip(),
        letters=letters, labels=labels, definitions=tuple(v.definition for v in data.options.values()),
        examples=tuple((ex.sentence, ex.response, ex.letter) for ex in data.examples), item=data.item,
        answer_prefix=data.answer_prefix,
    )
