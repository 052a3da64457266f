"""The `llm` judge: any local Hugging Face causal LM, judging by label scoring.

Instead of generating text and parsing it, the rubric (``assets/rubric.yaml``) is rendered as a chat (system rubric,
worked examples as turns, then the item) ending in the answer prefix ("Letter:"), and the six option letters are
scored by the model's next-token log-likelihood: one prefill-only forward pass per response, batched, and only the
last position's logits are computed. The best letter is the label; the distribution over the six options, calibrated
for the judge's letter prior (``llm_calibration``), is kept in ``scores``. There is nothing to parse, so no parse
failures; what the judge cannot take (an input longer than its context, a non-text response) and what it will not
judge (it puts little probability on the letters: a judge refusal or an off-rubric answer, named with its own words)
is ``unjudged`` and says why. torch/transformers are imported lazily.

Recipe for a strong LLM judge on a GPU (the embedded 135M model is at chance; the rubric needs an
instruct model of several billion parameters):
1. Put a local Hugging Face instruct checkpoint with a chat template on the machine (e.g. a 7-9B Llama-3.x, Qwen2.5 or
   Mistral instruct model; no network is used). On CUDA it runs in bf16, 64 items a batch (``max_batch_tokens`` caps
   padded tokens); the rubric prefix is computed once.
2. Validate before use, on a seeded subset first: ``qos judge validate ../shared/data/pilot/df_annotated_llama13.csv
   --judge llm:/path/to/model --limit 300 --no-store`` and ``qos judge validate XSTEST.csv --labels xstest --by type
   --judge llm:/path/to/model --no-store``. Compare kappa and refusal F1 with ``--judge default``, and read
   ``n_unjudged``: a judge model that refuses safety content, or answers off the rubric, has its items unjudged with
   its own words quoted in the reason; many of them mean another judge model (or a base model) is needed.
3. If a letter is not one token for its tokenizer, ``JudgeError`` says so: change the option keys in
   ``assets/rubric.yaml`` (any edit there is a new judge id).
4. Audit with it beside the rules: ``qos run --judge default --judge llm:/path/to/model`` (each keeps
   its own id), or combine them: ``--judge ensemble:mean:rules+llm:/path/to/model``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from qos_pipeline import taxonomy
from qos_pipeline.judging import llm_calibration as calibration
from qos_pipeline.judging import rubric as rubric_module
from qos_pipeline.judging.base import JudgeInput, Judgment
from qos_pipeline.judging.rubric import Rubric
from qos_pipeline.provenance import code_digest

log = logging.getLogger(__name__)
SCORING_CODE = code_digest(sys.modules[__name__], rubric_module, calibration)
"""Hash of the rendering and scoring code: part of every llm judge id."""
MIN_PREFIX = 16  # tokens; a shorter shared prefix is not worth a cache
_KEY_BUDGET = 41  # 64-char key limit minus "llm." + ".<8 hex>" + ".r<v>-<6 hex>"


class JudgeError(ValueError):
    """A judge cannot be built or used; the message names it and what to change."""


def llm_judge_id(model_key: str, model_version: str, rubric: Rubric) -> str:
    """``llm.<model key>.<model hash>.r<rubric version>-<hash>``: the hash covers the rubric file and the
    scoring code, so an edited rubric, prompt rendering or scoring is a new judge. Safe as a file key."""
    key = model_key[:_KEY_BUDGET].strip("-._") or hashlib.sha256(model_key.encode()).hexdigest()[:8]
    tag = hashlib.sha256(f"{rubric.digest}\0{SCORING_CODE}".encode()).hexdigest()[:6]
    return f"llm.{key}.{model_version[:8]}.r{rubric.version}-{tag}"


def option_token_ids(tokenizer: Any, prefix: str, letters: Sequence[str]) -> list[int]:
    """The token each option letter adds right after ``prefix`` (which ends with the answer prefix).

    Taken in context, since many tokenizers encode a letter differently after a colon and a space.
    """
    base = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    ids = []
    for letter in letters:
        full = tokenizer(f"{prefix} {letter}", add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base or len(full) != len(base) + 1:
            raise JudgeError(f"option {letter!r} is not one token after the rubric's answer prefix for this "
                             "tokenizer; use other option keys in assets/rubric.yaml")
        ids.append(full[-1])
    if len(set(ids)) != len(ids):
        raise JudgeError(f"options {list(letters)} share tokens {ids} for this tokenizer (unknown words?)")
    return ids


def judge_forward(model: Any) -> Any:
    """What ``score_options`` calls: on CUDA the model compiled (``torch.compile``, dynamic shapes, so one
    graph serves every batch size and width), which fuses the norms, rotary embeddings and activations
    between the matmuls (run one by one they take about a sixth of a 400-token prefill); elsewhere the
    model itself."""
    import torch

    if next(model.parameters()).device.type != "cuda":
        return model
    return torch.compile(model, dynamic=True)


def score_options(model: Any, batch: Sequence[Sequence[int]], option_ids: Sequence[int], pad_id: int,
                  prefix_cache: Any = None, forward: Any = None) -> Any:
    """Log-probabilities (over the whole vocabulary) of each option token after each sequence: [B, K].

    Left padding puts every sequence's last token at the last position, so ``logits_to_keep=1`` computes
    the vocabulary projection for that position only (the largest matmul otherwise). Explicit
    position ids keep a padded row's positions identical to its unpadded run. With ``prefix_cache``
    (the KV cache of a shared prefix, batch 1) the sequences are continuations of that prefix: the
    rubric and its worked examples are then computed once, not once per response. ``forward``: what to
    call instead of ``model`` (``judge_forward``); same results.
    """
    import copy

    import torch

    device = next(model.parameters()).device
    width, start = max(len(ids) for ids in batch), 0
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, width - len(ids):] = 1
    inputs: dict[str, Any] = {"use_cache": prefix_cache is not None}
    if prefix_cache is not None:
        start = prefix_cache.get_seq_length()
        cache = copy.deepcopy(prefix_cache)  # the forward pass appends to it; the prefix stays reusable
        cache.batch_repeat_interleave(len(batch))
        inputs["past_key_values"] = cache
        mask = torch.cat([torch.ones((len(batch), start), dtype=torch.long), mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, start:]
    inputs.update(input_ids=input_ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device))
    with torch.inference_mode():
        try:
            logits = (forward or model)(**inputs, logits_to_keep=1).logits[:, -1, :]
        except TypeError:  # an architecture without logits_to_keep: same result, more compute
            logits = (forward or model)(**inputs).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    return logprobs[:, list(option_ids)].cpu()


def prefix_cache(model: Any, prefix: Sequence[int]) -> Any:
    """The KV cache of ``prefix`` (batch 1), for ``score_options``."""
    import torch

    ids = torch.tensor([list(prefix)], dtype=torch.long, device=next(model.parameters()).device)
    with torch.inference_mode():
        return model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values


def common_prefix(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """The longest common prefix of two token sequences."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return list(a[:n])


class LLMJudge:
    """Label scoring with a local HF causal LM; loads on first use (building one is cheap)."""

    kind = "llm"

    def __init__(self, model_path: Path, model_key: str, model_version: str, rubric: Rubric,
                 device: str | None = None, batch_size: int | None = None, max_batch_tokens: int = 65536,
                 use_prefix_cache: bool = True, calibrate: bool = True,
                 min_option_mass: float = calibration.MIN_OPTION_MASS) -> None:
        self.model_path, self.model_key, self.model_version = Path(model_path), model_key, model_version
        self.rubric = rubric
        self.judge_id = llm_judge_id(model_key, model_version, rubric)
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self._device = device
        self._tokenizer: Any = None
        self._model: Any = None
        self._forward: Any = None  # judge_forward(model): compiled on CUDA
        self.context: int | None = None
        self.option_ids: list[int] = []
        self.use_prefix_cache = use_prefix_cache
        self._prefix: list[int] = []
        self._prefix_kv: Any = None
        self.calibrate, self.min_option_mass = calibrate, min_option_mass
        self.prior: list[float] | None = None  # the letter prior on content-free items (when calibrating)

    def load(self) -> None:
        """Load tokenizer and model once (shared per folder), then the prefix cache and calibration prior if asked."""
        if self._model is not None:
            return
        from qos_pipeline.generation.models.loaded import load, load_tokenizer

        tokenizer = load_tokenizer(self.model_path, self.model_key)
        # shared with a generator (or another judge) of the same folder: one copy in memory (bf16 on CUDA)
        loaded = load(self.model_path, self.model_key, version=self.model_version, device=self._device)
        model = loaded.model
        self._tokenizer, self._device = tokenizer, loaded.key.device
        self.batch_size = self.batch_size or (8 if self._device == "cpu" else 64)
        self.option_ids = option_token_ids(tokenizer, self.render("[BLANK]", ""), self.rubric.letters)
        self.context = getattr(model.config, "max_position_embeddings", None)
        self._model, self._forward = model, loaded.memo("judge forward", lambda: judge_forward(model))
        if self.use_prefix_cache:
            probes = [tokenizer(self.render(s, r), add_special_tokens=False)["input_ids"]
                      for s, r in (("Xq went to [BLANK]", "yes"), ("1 2 3 [BLANK]", "zz top"))]
            self._prefix = common_prefix(*probes)
            if len(self._prefix) >= MIN_PREFIX:
                self._prefix_kv = prefix_cache(model, self._prefix)
        if self.calibrate:
            free = [JudgeInput(sentence, response) for sentence, response in calibration.CONTENT_FREE]
            rows = self._score({i: ids for i, ids in enumerate(map(self.encode, free)) if not isinstance(ids, str)})
            self.prior = calibration.prior_from(list(rows.values())) if rows else None

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad id (else eos, else 0)."""
        tok = self._tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return int(pad if pad is not None else 0)  # padded positions are masked, any id will do

    def render(self, sentence: str, response: str) -> str:
        """The text whose next token is scored; ends with the rubric's answer prefix."""
        messages = self.rubric.messages(sentence, response)
        if getattr(self._tokenizer, "chat_template", None):
            text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:  # a base model: the same turns as plain paragraphs
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        return text + self.rubric.answer_prefix

    def encode(self, item: JudgeInput) -> list[int] | str:
        """Token ids of the scored text, or the reason the item cannot be judged."""
        if not isinstance(item.response, str):
            return f"response is not text ({type(item.response).__name__})"
        prompt = item.prompt_text if isinstance(item.prompt_text, str) else ""
        ids = self._tokenizer(self.render(prompt, item.response), add_special_tokens=False)["input_ids"]
        if self.context is not None and len(ids) > self.context:
            return f"input is {len(ids)} tokens; the judge's context is {self.context}"
        return ids

    def _batches(self, encoded: dict[int, list[int]]) -> list[list[int]]:
        """Similar lengths share a batch (little padding), capped by items and by padded tokens."""
        order = sorted(encoded, key=lambda i: (len(encoded[i]), i))
        batches: list[list[int]] = []
        size = cast(int, self.batch_size)  # set by load()
        for i in order:
            cur = batches[-1] if batches else None
            width = len(encoded[i])  # sorted ascending: the newest item is the widest
            if cur is None or len(cur) >= size or (len(cur) + 1) * width > self.max_batch_tokens:
                batches.append([i])
            else:
                cur.append(i)
        return batches

    def _split_prefix(self, encoded: dict[int, list[int]]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """(continuations of the cached rubric prefix, items to score whole). An item whose tokens merge
        across the prefix boundary differently is scored whole, so the cache never changes a result."""
        p = self._prefix
        if self._prefix_kv is None:
            return {}, encoded
        cached = {i: ids[len(p):] for i, ids in encoded.items() if ids[: len(p)] == p and len(ids) > len(p)}
        return cached, {i: ids for i, ids in encoded.items() if i not in cached}

    def judge(self, items: Sequence[JudgeInput]) -> list[Judgment]:
        """Each item's label: the option letter scored highest (calibrated if asked), or ``unjudged`` with why."""
        self.load()
        encoded, out = {}, {}
        for i, item in enumerate(items):
            ids = self.encode(item)
            if isinstance(ids, str):
                out[i] = Judgment(taxonomy.UNJUDGED, ids)
            else:
                encoded[i] = ids
        for i, row in self._score(encoded).items():
            out[i] = self._judgment(row, encoded[i])
        return [out[i] for i in range(len(items))]

    def _score(self, encoded: dict[int, list[int]]) -> dict[int, list[float]]:
        """Log-probabilities of the option letters for each encoded item (batched, prefix-cached)."""
        cached, whole = self._split_prefix(encoded)
        plan = [(b, cached, self._prefix_kv) for b in self._batches(cached)] + \
               [(b, whole, None) for b in self._batches(whole)]
        rows: dict[int, list[float]] = {}
        for number, (batch, ids, kv) in enumerate(plan, start=1):
            logprobs = self._score_batch([ids[i] for i in batch], kv)
            rows.update(zip(batch, logprobs.tolist()))
            log.info("llm judge %s: batch %d/%d (%d items)", self.judge_id, number, len(plan), len(batch))
        return rows

    def _score_batch(self, batch: list[list[int]], kv: Any) -> Any:
        """``score_options`` through the compiled forward; if compiling fails, eager from then on (same
        results, slower), saying so once."""
        if self._forward is not self._model:
            try:
                return score_options(self._model, batch, self.option_ids, self.pad_id, kv, self._forward)
            except Exception as exc:  # torch.compile raises many kinds; the eager model is the fallback
                if "out of memory" in str(exc).lower():
                    raise
                log.warning("llm judge %s: compiled forward failed (%s); scoring eagerly", self.judge_id,
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                self._forward = self._model
        return score_options(self._model, batch, self.option_ids, self.pad_id, kv)

    def _judgment(self, logprobs: list[float], ids: list[int]) -> Judgment:
        raw = calibration.softmax(logprobs)
        mass = calibration.option_mass(logprobs)  # how much the model puts on the options at all
        if mass < self.min_option_mass:  # it would rather say something else: ask it what
            said = calibration.continuation(self._model, self._tokenizer, ids)
            return Judgment(taxonomy.UNJUDGED, calibration.why_unjudged(mass, said), dict(zip(self.rubric.labels, raw)))
        cal = calibration.calibrate(raw, self.prior)
        best = calibration.best(cal, raw)
        reason = (f"label scoring: {self.rubric.letters[best]} ({self.rubric.labels[best]}) p={cal[best]:.2f} "
                  f"(uncalibrated {raw[best]:.2f}); option mass {mass:.2f}")
        return Judgment(self.rubric.labels[best], reason, dict(zip(self.rubric.labels, cal)))
