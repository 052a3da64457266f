"""Judge throughput: label scoring vs generate-then-parse judges, on a random-weight Llama.

Usage (from the repo root):
  python benchmarks/judge_throughput.py            # GPU: Llama-2-7B architecture, bf16, 400-token inputs, batch 64
  python benchmarks/judge_throughput.py --small    # CPU smoke run: a 4-layer model, short inputs, small batches

Prints judged responses per second for (a) label scoring: one prefill-only forward pass per response,
last-position logits only (``qos_pipeline.judging.llm.score_options`` through ``judge_forward``, the llm
judge's own code path: compiled on CUDA; the eager forward is measured too, as ``*_eager_*``),
and (b) generate-then-parse judges that write 16 and 128 tokens (greedy, exactly that many: a random model
would otherwise stop at random; parsing is not timed, it is negligible), all in the same run and on the
same inputs; the achieved TFLOP/s of label scoring and its share of the dense matmul rate measured in the
same run (bf16 on CUDA; on CPU float32 and a small matmul, so the share means little there but the keys
exist). Weights are random: throughput does not depend on their values. ``--json`` writes the figures
with the same keys for ``--small`` and the full run; ``benchmarks/gpu_check.sh`` uses it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qos_pipeline.judging.llm import judge_forward, score_options

FULL = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)  # Llama-2-7B
SMALL = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=4, vocab_size=32000, max_position_embeddings=1024)
OPTIONS = [319, 350, 315, 360, 382, 383]  # six option tokens (" A".." F" in Llama-2's vocabulary)


def build(cfg: dict, device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**cfg, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def forward_flops(cfg: dict, tokens: int) -> float:
    """FLOPs of one prefill of ``tokens`` tokens, logits at the last position only (2 per multiply-add)."""
    d, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    kv = d * cfg["num_key_value_heads"] // cfg["num_attention_heads"]
    per_token = layers * (2 * (2 * d * d + 2 * d * kv) + 2 * 3 * d * cfg["intermediate_size"])
    attention = layers * 2 * tokens * tokens * d  # QK^T and AV under the causal mask (half of 4*T^2*d)
    return per_token * tokens + attention + 2 * d * cfg["vocab_size"]


def timed(fn, sync, repeats: int) -> float:
    fn()  # warm-up: kernels, allocator
    sync()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - started) / repeats


def matmul_rate(device: str, dtype, sync) -> float:
    """Measured dense matmul TFLOP/s at this dtype (the ceiling that label scoring is compared with)."""
    import torch

    n = 8192 if device == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, sync, 20 if device == "cuda" else 3)
    return 2 * n**3 / seconds / 1e12


def header(args: argparse.Namespace, device: str, dtype, build_s: float) -> dict[str, Any]:
    """What the figures depend on besides the code: device, versions, model, settings."""
    import torch
    import transformers

    return {"benchmark": "judge_throughput", "small": args.small,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "dtype": str(dtype),
            "model": "llama-2-7b architecture" if not args.small else "small llama (4 layers, d=256)",
            "batch": args.batch, "input_tokens": args.tokens, "repeats": args.repeats,
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "model_build_s": build_s}


def run(args: argparse.Namespace, save=lambda out: None) -> dict[str, Any]:
    """The figures; ``save(figures so far)`` is called once before the (long) compiled pass."""
    import torch

    if not args.small and not torch.cuda.is_available():  # a 7B model on CPU would run for hours
        sys.exit("the Llama-2-7B judge benchmark needs a CUDA GPU; run with --small on CPU")
    device = "cpu" if args.small else "cuda"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    cfg = SMALL if args.small else FULL
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    started = time.perf_counter()
    model = build(cfg, device, dtype)
    out = header(args, device, dtype, time.perf_counter() - started)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, cfg["vocab_size"], (args.batch, args.tokens), generator=gen)
    batch = ids.tolist()
    inputs = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}

    def generate(k: int):
        with torch.inference_mode():
            return model.generate(**inputs, max_new_tokens=k, min_new_tokens=k, do_sample=False, pad_token_id=0)

    flops = forward_flops(cfg, args.tokens) * args.batch
    out.update(dict.fromkeys(KEYS))  # every key from the start: a run cut short writes the same keys
    eager = timed(lambda: score_options(model, batch, OPTIONS, 0), sync, args.repeats)
    out["label_scoring_eager_items_per_s"] = args.batch / eager
    out["label_scoring_eager_tflops"] = flops / eager / 1e12
    out["matmul_tflops"] = matmul_rate(device, dtype, sync)
    for k in (16, 128):
        out[f"generate_{k}_items_per_s"] = args.batch / timed(lambda: generate(k), sync, max(1, args.repeats // 2))
    save(derive(out))
    # last, as it is the longest (a one-off compile, timed apart): the judge's own path (judge_forward)
    forward = judge_forward(model)
    out["label_scoring_compiled"] = forward is not model
    started = time.perf_counter()
    score_options(model, batch, OPTIONS, 0, forward=forward)
    sync()
    out["label_scoring_first_call_s"] = time.perf_counter() - started
    scoring = timed(lambda: score_options(model, batch, OPTIONS, 0, forward=forward), sync, args.repeats)
    out["label_scoring_items_per_s"] = args.batch / scoring
    out["label_scoring_tflops"] = flops / scoring / 1e12
    # None on CPU rather than a missing key: --small and the GPU run write the same keys
    out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return derive(out)


KEYS = ("label_scoring_eager_items_per_s", "label_scoring_eager_tflops", "label_scoring_first_call_s",
        "label_scoring_compiled", "label_scoring_items_per_s", "label_scoring_tflops", "generate_16_items_per_s",
        "generate_128_items_per_s", "speedup_vs_generate_16", "speedup_vs_generate_128", "matmul_tflops",
        "share_of_matmul_rate", "percent_of_matmul_rate", "eager_percent_of_matmul_rate", "peak_memory_gib")


def derive(out: dict[str, Any]) -> dict[str, Any]:
    """The ratios, from whichever measurements are there (None for the others)."""
    ratio = lambda a, b: out[a] / out[b] if out[a] is not None and out[b] else None  # noqa: E731
    out["speedup_vs_generate_16"] = ratio("label_scoring_items_per_s", "generate_16_items_per_s")
    out["speedup_vs_generate_128"] = ratio("label_scoring_items_per_s", "generate_128_items_per_s")
    out["share_of_matmul_rate"] = ratio("label_scoring_tflops", "matmul_tflops")
    out["percent_of_matmul_rate"] = None if out["share_of_matmul_rate"] is None else 100 * out["share_of_matmul_rate"]
    eager = ratio("label_scoring_eager_tflops", "matmul_tflops")
    out["eager_percent_of_matmul_rate"] = None if eager is None else 100 * eager
    return out


def write(path: Path | None, out: dict[str, Any]) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="tiny model on CPU (a smoke run; not the GPU figures)")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--tokens", type=int, help="judge input length in tokens (default 400; --small: 32)")
    ap.add_argument("--repeats", type=int, help="timed label-scoring passes (default 3; --small: 2); "
                    "each generate-then-parse judge gets half as many, at least one")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    args.batch = args.batch or (4 if args.small else 64)
    args.tokens = args.tokens or (32 if args.small else 400)
    args.repeats = args.repeats or (2 if args.small else 3)
    out = run(args, lambda partial: write(args.json, partial))
    for key, value in out.items():
        print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")
    print(f"targets: label scoring >= 5x the 128-token judge ({out['speedup_vs_generate_128']:.1f}x), "
          f">= 65% of the bf16 matmul rate ({100 * out['share_of_matmul_rate']:.0f}%)"
          + ("; CPU smoke run: these targets are for the GPU run" if out["device"] == "cpu" else ""))
    write(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
