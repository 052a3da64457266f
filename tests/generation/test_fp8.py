"""FP8 projections (``generation/fp8.py``) on CPU: quantized layers stay close to the originals."""

from __future__ import annotations

import torch

from qos_pipeline.generation.fp8 import FP8, Fp8Linear, convert_linears


def test_fp8_linear_is_close_to_the_linear_it_quantizes() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 96, bias=True)
    fp8 = Fp8Linear.from_linear(linear)
    assert fp8.weight.dtype == FP8 and fp8.scale.shape == (1, 96)
    x = torch.randn(3, 7, 256)  # 21 rows: not a multiple of 16, so the padding path runs too
    exact, approx = linear(x), fp8(x)
    assert approx.shape == exact.shape
    relative = (approx - exact).norm() / exact.norm()
    assert 0 < relative < 0.08  # e4m3 keeps 3 mantissa bits: a few percent, never exact


def test_convert_linears_swaps_every_projection_and_keeps_the_model_working() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 128, (2, 9))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        assert convert_linears(model.model.layers) == 14  # q, k, v, o, gate, up, down per layer
        after = model(input_ids=ids).logits
    assert isinstance(model.model.layers[0].mlp.down_proj, Fp8Linear)
    assert isinstance(model.lm_head, torch.nn.Linear)  # the head stays in the model's dtype
    assert (after - before).norm() / before.norm() < 0.1
    assert (after.argmax(-1) == before.argmax(-1)).float().mean() > 0.8
