"""A KV cache of fixed slots, each row written at its own position, and the attention that reads it.

The continuous decoder (``continuous``) keeps ``S`` rows in flight; when one finishes, another prompt takes
its slot. transformers' own caches write every row of a batch at one shared position, so a slot that
restarts could not be refilled without waiting for the others; here the attention function (registered
with transformers as ``qos_slots``) stores each layer's keys and values itself:

- prefill: a group of new prompts (left padded to width ``w``) runs as ordinary causal attention (sdpa),
  and its keys/values land in positions ``[0, w)`` of the slots it fills;
- decode: every slot's new key/value is written at the slot's own position ``pos``, and each row attends
  to its live range ``[start, pos]`` only (``start`` skips its left padding).

Attention per row depends on its own slot only, whatever the other slots hold. ``dense`` reads all
``capacity`` positions of every slot under a mask (sdpa); ``flex`` uses PyTorch's FlexAttention with a
block mask listing each slot's live blocks, so a step reads about the live tokens only (the point on a
GPU, where decoding is bound by memory traffic; it needs ``torch.compile`` there, done once here).
Everything a step reads is a fixed tensor updated in place, so a step can be captured in a CUDA graph.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

NAME = "qos_slots"
ATTENTIONS = ("dense", "flex")


def _sdpa(*args: Any, **kwargs: Any):
    return ALL_ATTENTION_FUNCTIONS["sdpa"](*args, **kwargs)


def slot_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                   slot_kv: SlotKV | None = None, **kwargs: Any):
    """Transformers' attention interface: sdpa unless a ``SlotKV`` is passed (as ``slot_kv=`` to forward)."""
    if slot_kv is None:
        return _sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    if slot_kv.mode == "prefill":
        slot_kv.store_prefill(module.layer_idx, key, value)
        return _sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    return slot_kv.decode(module.layer_idx, query, key, value, scaling), None


def use_slot_attention(model) -> None:
    """Switch ``model`` to ``qos_slots`` (which is sdpa, masks included, when no ``slot_kv`` is passed)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, slot_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # padding/causal masks built as for sdpa
    if model.config._attn_implementation != NAME:
        model.set_attn_implementation(NAME)
    if model.config._attn_implementation != NAME:  # a model that cannot switch dynamically says so in a warning
        raise ValueError(f"{type(model).__name__} cannot use the {NAME!r} attention (transformers' attention "
                         "interface); use decoder 'batched' for it")


def _text_config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


class SlotKV:
    """Keys and values of ``slots`` rows x ``capacity`` positions for every layer, plus each slot's live
    range; with flex, ``capacity`` is rounded up to whole blocks of ``block`` positions."""

    def __init__(self, model, slots: int, capacity: int, attention: str = "dense", block: int = 64) -> None:
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        cfg = _text_config(model)
        heads = cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        device, dtype = model.device, model.dtype
        self.slots, self.block, self.attention = slots, block, attention
        # flex works on whole blocks (and reads only the live ones); dense reads every position
        self.capacity = -(-capacity // block) * block if attention == "flex" else capacity
        self.gqa = kv_heads != heads
        shape = (slots, kv_heads, self.capacity, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_hidden_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_hidden_layers)]
        self.start = torch.zeros(slots, dtype=torch.long, device=device)
        self.pos = torch.zeros(slots, dtype=torch.long, device=device)
        self.mask = torch.zeros((slots, 1, 1, self.capacity), dtype=torch.bool, device=device)
        self._columns = torch.arange(self.capacity, device=device)
        self.mode = "decode"
        self.prefill_slots: torch.Tensor | None = None
        blocks = self.capacity // block
        self._num_blocks = torch.zeros((slots, 1, 1), dtype=torch.int32, device=device)
        self._indices = torch.zeros((slots, 1, 1, blocks), dtype=torch.int32, device=device)
        self._block_range = torch.arange(blocks, dtype=torch.int32, device=device)
        self._flex = self._block_mask() if attention == "flex" else None

    def head(self, slots: int) -> SlotKV:
        """The first ``slots`` slots as a cache of their own, sharing this one's storage (views)."""
        part = object.__new__(SlotKV)
        part.__dict__.update(self.__dict__)
        part.slots = slots
        part.keys = [k[:slots] for k in self.keys]
        part.values = [v[:slots] for v in self.values]
        for name in ("start", "pos", "mask", "_num_blocks", "_indices"):
            setattr(part, name, getattr(self, name)[:slots])
        part._flex = part._block_mask() if self.attention == "flex" else None
        return part

    def move(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        """Copy slots ``src`` (their cached keys/values and live ranges) into slots ``dst``."""
        for tensors in (self.keys, self.values):
            for t in tensors:
                t[dst] = t[src]
        for t in (self.start, self.pos):
            t[dst] = t[src]

    def _block_mask(self):
        from torch.nn.attention.flex_attention import BlockMask, flex_attention

        start, pos = self.start, self.pos

        def live(b, h, q_idx, kv_idx):
            return (kv_idx >= start[b]) & (kv_idx <= pos[b])

        mask = BlockMask.from_kv_blocks(self._num_blocks, self._indices, BLOCK_SIZE=(self.block, self.block),
                                        mask_mod=live, seq_lengths=(1, self.capacity))
        # compiled once, on CUDA: eager FlexAttention is a reference implementation that materializes scores
        fn = torch.compile(flex_attention, dynamic=False) if self.pos.device.type == "cuda" else flex_attention
        return mask, fn

    def update_mask(self) -> None:
        """Each slot's live range ``[start, pos]`` as the dense mask or the block list (call before a step)."""
        live = (self._columns >= self.start[:, None]) & (self._columns <= self.pos[:, None])
        self.mask.copy_(live[:, None, None, :])
        if self._flex is not None:
            first = (self.start // self.block).to(torch.int32)
            last = (self.pos // self.block).to(torch.int32)
            self._num_blocks.copy_((last - first + 1).view(-1, 1, 1))
            blocks = self._indices.shape[-1]
            self._indices.copy_((first[:, None] + self._block_range).clamp(max=blocks - 1).view(self.slots, 1, 1, -1))

    def store_prefill(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Store one layer's prefilled keys and values in the slots being prefilled."""
        width = key.shape[2]
        self.keys[layer][self.prefill_slots, :, :width] = key
        self.values[layer][self.prefill_slots, :, :width] = value

    def decode(self, layer: int, query, key, value, scaling: float | None) -> torch.Tensor:
        """Write this step's key/value at each slot's ``pos``; attend over the live range. [S, 1, H, D]."""
        where = self.pos.view(-1, 1, 1, 1).expand_as(key)
        keys, values = self.keys[layer], self.values[layer]
        keys.scatter_(2, where, key.to(keys.dtype))
        values.scatter_(2, where, value.to(values.dtype))
        if self._flex is not None:
            block_mask, flex = self._flex
            out = flex(query, keys, values, block_mask=block_mask, scale=scaling, enable_gqa=self.gqa)
            return out.transpose(1, 2).contiguous()
        slots, heads, _, dim = query.shape
        kv_heads = keys.shape[1]
        # one query per row: the query heads sharing a key/value head become that head's query rows, so
        # grouped-query models read each cached head once, with sdpa's masked (memory-efficient) kernel
        grouped = query.reshape(slots, kv_heads, heads // kv_heads, dim)
        out = torch.nn.functional.scaled_dot_product_attention(grouped, keys, values, attn_mask=self.mask,
                                                               scale=scaling)
        return out.reshape(slots, 1, heads, dim)
