"""The `llm` judge's rubric (``assets/rubric.yaml``): option letters, label definitions, worked examples.

Pure (yaml only). ``Rubric.digest`` hashes the file's content, so any edit changes the judge id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from qos_pipeline import taxonomy

RUBRIC_FILE = "rubric.yaml"


class RubricError(ValueError):
    """The rubric file is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Rubric:
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
        options = "\n".join(f"{ltr}: {lab} - {d}" for ltr, lab, d in zip(self.letters, self.labels, self.definitions))
        return f"{self.instructions}\n{options}"

    def item_text(self, sentence: str, response: str) -> str:
        return self.item.format(sentence=sentence, response=response)

    def messages(self, sentence: str, response: str) -> list[dict[str, str]]:
        """System rubric, each worked example as a user/assistant turn, then the item to judge."""
        msgs = [{"role": "system", "content": self.system_text()}]
        for ex_sentence, ex_response, letter in self.examples:
            msgs.append({"role": "user", "content": self.item_text(ex_sentence, ex_response)})
            msgs.append({"role": "assistant", "content": f"{self.answer_prefix} {letter}"})
        msgs.append({"role": "user", "content": self.item_text(sentence, response)})
        return msgs


def _need(data: dict, key: str, kind: type, file: Path):
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, (str, dict, list)) and not value):
        raise RubricError(f"{file}: field {key!r} must be a non-empty {kind.__name__}")
    return value


def load_rubric(assets_dir: Path) -> Rubric:
    file = Path(assets_dir) / RUBRIC_FILE
    if not file.is_file():
        raise RubricError(f"rubric {file} not found; the llm judge needs it (see assets/rubric.yaml in the repo)")
    raw = file.read_bytes()
    data = yaml.safe_load(raw) or {}
    options = _need(data, "options", dict, file)
    letters = tuple(str(k) for k in options)
    labels = tuple(taxonomy.normalize_label(v.get("label", "")) for v in options.values())
    if sorted(labels) != sorted(taxonomy.LABELS):
        raise RubricError(f"{file}: options must map one letter to each of the six labels; got {labels}")
    examples = []
    for ex in data.get("examples") or []:
        if ex.get("letter") not in letters:
            raise RubricError(f"{file}: example letter {ex.get('letter')!r} is not one of {letters}")
        examples.append((str(ex["sentence"]), str(ex["response"]), str(ex["letter"])))
    item = _need(data, "item", str, file)
    if "{sentence}" not in item or "{response}" not in item:
        raise RubricError(f"{file}: 'item' must contain {{sentence}} and {{response}}")
    return Rubric(
        version=int(_need(data, "version", int, file)), digest=hashlib.sha256(raw).hexdigest(),
        instructions=_need(data, "instructions", str, file).strip(), letters=letters, labels=labels,
        definitions=tuple(str(v.get("definition", "")) for v in options.values()), examples=tuple(examples),
        item=item, answer_prefix=_need(data, "answer_prefix", str, file),
    )
