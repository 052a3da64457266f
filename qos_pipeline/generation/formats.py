"""Prompt-format conditions (``assets/prompt_formats.yaml``): how a prompt's text is wrapped for the model.

A condition is data: a chat-template condition names only its system prompt (the tokenizer's own chat
template does the wrapping), a text condition spells out the whole string. Pure module: rendering takes any
tokenizer-like object with ``chat_template`` and ``apply_chat_template``, so no torch is needed here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qos_pipeline import asset_files
from qos_pipeline.asset_files import FormatsFile, parse
from qos_pipeline.generation.models.files import ModelError

FORMATS_FILE = "prompt_formats.yaml"


class PromptFormatError(ValueError):
    """The formats file or a selected format id is unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class PromptFormat:
    """One condition. ``id`` goes into every generation row (``prompt_format``)."""

    id: str
    kind: str
    system: str | None = None
    template: str | None = None
    add_special_tokens: bool = False

    def fingerprint(self) -> str:
        """12 hex of everything that shapes the prompt: editing the YAML text changes the cache key."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    def render(self, tokenizer: Any, user_text: str, model: str = "?") -> str:
        """The exact string to tokenize (with ``add_special_tokens=self.add_special_tokens``)."""
        if self.kind == "text":
            # replace, not str.format: prompt texts may hold braces.
            return str(self.template).replace("{system}", self.system or "").replace("{user}", user_text)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(
                f"model {model!r} has no chat template, so it cannot run prompt format {self.id!r}; use its "
                "-chat/-instruct checkpoint, or a text condition such as 'raw' or 'legacy:llama2-inst'")
        messages = [{"role": "user", "content": user_text}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja2 TemplateError, or a template raising on an unknown role
            raise ModelError(
                f"model {model!r}: its chat template rejects prompt format {self.id!r} ({exc}); if it has no "
                "system role, use 'chat:no-system' or a text condition") from exc


def _parse(fid: str, entry: asset_files.PromptFormat, file: Path) -> PromptFormat:
    """One condition; its shape was checked by ``asset_files.FormatsFile`` (no unknown field)."""
    if entry.kind == "text" and (entry.template is None or "{user}" not in entry.template):
        raise PromptFormatError(f"{file}: text format {fid!r} needs a `template:` containing {{user}}")
    if entry.kind == "chat" and entry.template is not None:
        raise PromptFormatError(f"{file}: chat format {fid!r} uses the tokenizer's template; drop `template:`")
    return PromptFormat(fid, entry.kind, entry.system, entry.template, entry.add_special_tokens)


def load_formats(assets_dir: Path) -> tuple[dict[str, PromptFormat], str]:
    """All conditions of ``prompt_formats.yaml`` by id, and the default id."""
    file = Path(assets_dir) / FORMATS_FILE
    data = parse(file, FormatsFile, PromptFormatError)
    formats = {str(fid): _parse(str(fid), entry, file) for fid, entry in data.formats.items()}
    default = str(data.default or next(iter(formats)))
    if default not in formats:
        raise PromptFormatError(f"{file}: default {default!r} is not one of {', '.join(formats)}")
    return formats, default


def select_formats(assets_dir: Path, ids: Sequence[str] | None, model_default: str | None = None
                   ) -> list[PromptFormat]:
    """The conditions to run: ``ids`` if given, else the model's own (registry), else the file's default."""
    formats, default = load_formats(assets_dir)
    wanted = list(dict.fromkeys(ids)) if ids else [model_default or default]
    unknown = [f for f in wanted if f not in formats]
    if unknown:
        raise PromptFormatError(f"unknown prompt format(s) {', '.join(map(repr, unknown))}; "
                                f"known: {', '.join(formats)} (assets/{FORMATS_FILE})")
    return [formats[f] for f in wanted]


# The paper's condition, for callers that build requests without the formats file (tests, fakes).
PAPER_FORMAT = PromptFormat("chat:paper-system", "chat", "You are a helpful assistant. Complete the [BLANK].")
