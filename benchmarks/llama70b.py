"""The paper's largest model size on one GPU: a Llama-2-70B architecture with FP8 weights, recorded lengths.

    python benchmarks/llama70b.py            # CUDA: Llama-2-70B architecture, FP8 projections, random weights
    python benchmarks/llama70b.py --small    # a tiny model of the same shape family (GQA) on CPU, seconds

Llama-2-70B (hidden 8192, 80 layers, 64 heads with 8 key/value heads, MLP 28672, vocab 32000) holds
68.7 B parameters: 128.5 GiB in bf16, which leaves one 141 GB H200 about 10 GiB for activations and KV
cache (0.31 MiB per token: ~100 rows of 320 tokens), so the run uses FP8 projections
(``qos_pipeline.generation.fp8``: 64 GiB) and bf16 embeddings, norms and head. The weights are random,
initialized on the GPU (nothing is read or downloaded); throughput does not depend on their values.
Rows stop at the recorded response lengths exactly as in ``generation_throughput.py``, whose runs, records
and summary this reuses (``--runs``, default ``continuous:flex:256 continuous:dense:256
continuous:flex:512``, ``--rows-per-slot`` 2). Also written: the weights' and the peak GPU memory, and
``recommended``: the fastest run's settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generation_throughput as gt  # noqa: E402
from qos_pipeline.generation.fp8 import Fp8Linear, convert_linears  # noqa: E402
from qos_pipeline.generation.sampling import SamplingConfig  # noqa: E402

LLAMA2_70B = dict(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
                  intermediate_size=28672, vocab_size=32000, max_position_embeddings=4096)
TINY_GQA = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                intermediate_size=256, vocab_size=32000, max_position_embeddings=4096)
GPU_RUNS = ["continuous:flex:256", "continuous:dense:256", "continuous:flex:512"]
SMALL_RUNS = ["continuous:dense:4", "continuous:flex:4"]


def build_fp8(config: dict, device: str):
    """The architecture on the meta device, projections swapped for FP8 ones, then materialized on
    ``device`` and filled with random values (std 0.02; norms 1), layer by layer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    cfg = LlamaConfig(**config, bos_token_id=gt.BOS, eos_token_id=gt.EOS, pad_token_id=gt.PAD,
                      tie_word_embeddings=False)
    with torch.device("meta"):
        model = LlamaForCausalLM._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    converted = convert_linears(model.model.layers, quantize=False)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Fp8Linear):
                module.fill_random(generator=gen)
            elif isinstance(module, (torch.nn.Embedding, torch.nn.Linear)):
                module.weight.normal_(0.0, 0.02, generator=gen)
            elif hasattr(module, "weight") and isinstance(module.weight, torch.nn.Parameter):
                module.weight.fill_(1.0)  # RMSNorm
        # the rotary tables are buffers computed at construction: on meta they were never computed
        with torch.device(device):
            model.model.rotary_emb = type(model.model.rotary_emb)(config=model.config)
    assert converted == 7 * config["num_hidden_layers"], converted
    return model.eval()


def memory(model) -> dict[str, float]:
    fp8 = sum(p.numel() for n, p in model.named_parameters() if p.dtype == torch.float8_e4m3fn)
    other = sum(p.numel() * p.element_size() for p in model.parameters() if p.dtype != torch.float8_e4m3fn)
    params = sum(p.numel() for p in model.parameters())
    return {"parameters_b": params / 1e9, "weights_gib": (fp8 + other) / 2**30,
            "bf16_weights_gib": params * 2 / 2**30, "fp8_projection_params_b": fp8 / 1e9}


def recommended(figures: dict[str, Any]) -> dict[str, Any] | None:
    ok = [r for r in figures["runs"] if r["useful_tokens_per_s"]]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["useful_tokens_per_s"])
    return {"run": best["name"], "decoder": best["path"], "batch_size": best["batch"],
            "attention": best["attention"], "compile": best["compile"],
            "useful_tokens_per_s": best["useful_tokens_per_s"], "peak_memory_gib": best["peak_memory_gib"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="tiny GQA model on CPU")
    ap.add_argument("--runs", nargs="+")
    ap.add_argument("--rows-per-slot", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=float("inf"), help="skip runs that start later than this")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    device = "cpu" if args.small else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("the 70B benchmark needs a CUDA GPU; run with --small on CPU")
    bench_args = gt.parse(["--small"] * args.small + ["--rows-per-slot", str(args.rows_per_slot), "--partition-rows", "0"])
    bench_args.runs = args.runs or (SMALL_RUNS if args.small else GPU_RUNS)
    runs = [gt.parse_run(spec) for spec in bench_args.runs]
    started = time.perf_counter()
    model = build_fp8(TINY_GQA if args.small else LLAMA2_70B, device)
    figures = gt.header(bench_args, device, model, time.perf_counter() - started)
    figures.update(benchmark="llama70b", model="tiny GQA llama, FP8 projections" if args.small
                   else "llama-2-70b architecture, FP8 projections", memory=memory(model), recommended=None)
    if device == "cuda":
        figures["memory"]["gpu_total_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"{figures['model']}: {figures['memory']['parameters_b']:.1f} B parameters, "
          f"{figures['memory']['weights_gib']:.1f} GiB (bf16 would be {figures['memory']['bf16_weights_gib']:.1f}), "
          f"built in {figures['model_build_s']:.1f} s", flush=True)
    sampling = SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9, max_new_tokens=bench_args.new_tokens).resolve()
    work = gt.Workload(max(gt.rows_of(r, bench_args) for r in runs), bench_args, model.config.vocab_size)
    gt.write(args.json, figures)
    for run in runs:
        late = time.perf_counter() - started > args.budget_s
        rows = gt.rows_of(run, bench_args)
        figures["runs"].append(gt.skipped(run, rows) if late else gt.bench(model, run, work, rows, sampling))
        print(gt.describe(figures["runs"][-1]), flush=True)
        figures["recommended"] = recommended(figures)
        gt.write(args.json, figures)
    figures["summary"], figures["complete"] = gt.summarize(figures), True
    gt.write(args.json, figures)
    print(f"recommended: {figures['recommended']}", flush=True)


if __name__ == "__main__":
    main()
