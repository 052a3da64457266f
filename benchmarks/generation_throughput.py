"""Generation throughput: the project's decoding path vs a naive ``model.generate`` baseline, same run.

    python benchmarks/generation_throughput.py            # Llama-2-7B architecture, CUDA, batches 128 and 256
    python benchmarks/generation_throughput.py --small    # a tiny Llama on CPU, batches 2 and 4 (seconds)
    python benchmarks/generation_throughput.py --json out/generation.json   # also write the figures

The model has the exact Llama-2-7B architecture (hidden 4096, 32 layers, 32 heads, MLP 11008, vocab
32000) with random weights: weights do not change throughput, and nothing is downloaded. Prompts are
random token ids (no tokenizer), all ``--prompt-len`` long; every row generates exactly ``--new-tokens``
(eos ignored), so both paths produce the same number of tokens.

- naive: ``model.generate`` on one fixed batch, no length sorting, dynamic KV cache.
- project: ``qos_pipeline.decoding.run_batches`` as ``HFGenerator`` runs it (length-sorted batches, OOM
  back-off, per-row seeded sampling, and on CUDA a static KV cache with a compiled forward). Its first
  pass (warm-up, including the one-off compile) is timed and reported separately from the steady state.

``--json`` writes the figures after every batch size (so a run cut short by a time limit keeps the batch
sizes it finished) with the same keys for ``--small`` and the full run; ``benchmarks/gpu_check.sh`` uses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without install

from qos_pipeline.generation.decoding import run_batches
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig

LLAMA2_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                 intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            intermediate_size=128, vocab_size=32000, max_position_embeddings=4096)
PAD, BOS, EOS = 0, 1, 2


def build_model(small: bool, device: str):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**(TINY if small else LLAMA2_7B), bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):  # allocate (and randomly initialize) the weights directly on the device
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def _free(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def naive(model, prompts: list[list[int]], sampling: SamplingConfig, device: str) -> tuple[float, int]:
    """Seconds and generated tokens of one model.generate call on the whole fixed batch."""
    ids = torch.tensor(prompts, device=device)
    kwargs = dict(max_new_tokens=sampling.max_new_tokens, min_new_tokens=sampling.max_new_tokens,
                  pad_token_id=PAD, eos_token_id=EOS, do_sample=bool(sampling.do_sample))
    if sampling.do_sample:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
    _sync(device)
    return time.perf_counter() - start, int(out[:, ids.shape[1]:].numel())


def project(model, prompts: list[list[int]], sampling: SamplingConfig, batch_size: int,
            options: DecodeOptions, device: str) -> tuple[float, int]:
    """Seconds and generated tokens of the project's path over the same prompts."""
    seeds = list(range(len(prompts)))
    _sync(device)
    start = time.perf_counter()
    tokens = 0
    for _, outputs in run_batches(model, prompts, seeds, sampling, batch_size, PAD, frozenset({EOS}), options):
        tokens += sum(len(ids) for ids, _ in outputs)
    _sync(device)
    return time.perf_counter() - start, tokens


def run_record(batch: int, naive_s: float | None, project_s: float, tokens: int, warm_s: float,
               error: str | None = None) -> dict[str, Any]:
    """One batch size's figures; every key present even when naive failed, so readers need no special case."""
    naive_tps = tokens / naive_s if naive_s else None
    project_tps = tokens / project_s
    return {"batch": batch, "tokens": tokens, "naive_s": naive_s, "naive_tokens_per_s": naive_tps,
            "project_s": project_s, "project_tokens_per_s": project_tps,
            "ratio": project_tps / naive_tps if naive_tps else None,
            # the first pass minus a steady one: the one-off cost, on CUDA mostly torch.compile
            "project_warmup_s": warm_s, "compile_s": max(0.0, warm_s - project_s), "error": error}


def bench(model, batch: int, args: argparse.Namespace, device: str) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(batch)
    prompts = torch.randint(3, model.config.vocab_size, (batch, args.prompt_len), generator=gen).tolist()
    sampling = (SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9) if args.sample
                else SamplingConfig(do_sample=False))
    sampling = dataclasses.replace(sampling, max_new_tokens=args.new_tokens).resolve()
    options = DecodeOptions(compile=compiles(args, device), ignore_eos=True)
    # CUDA context and kernels first, not measured
    naive(model, [p[:8] for p in prompts[:2]], dataclasses.replace(sampling, max_new_tokens=2), device)
    warm_s, _ = project(model, prompts, sampling, batch, options, device)
    naive_runs, project_runs = [], []
    for _ in range(args.repeats):  # alternated, best of each: a shared machine's noise only slows runs down
        _free(device)  # each path starts from the same free memory
        try:
            naive_runs.append(naive(model, prompts, sampling, device))
        except torch.cuda.OutOfMemoryError:
            naive_runs = []
        _free(device)
        project_runs.append(project(model, prompts, sampling, batch, options, device))
    project_s, project_tokens = min(project_runs)
    assert project_tokens == batch * args.new_tokens, project_tokens
    if not naive_runs:  # the project path backs off on OOM; naive generate cannot, so it has no figure here
        return run_record(batch, None, project_s, project_tokens, warm_s, "naive generate ran out of GPU memory")
    naive_s, naive_tokens = min(naive_runs)
    assert naive_tokens == project_tokens, (naive_tokens, project_tokens)
    return run_record(batch, naive_s, project_s, project_tokens, warm_s)


def compiles(args: argparse.Namespace, device: str) -> bool:
    return device == "cuda" and not args.no_compile  # transformers compiles on accelerators only


def describe(run: dict[str, Any], compiled: bool) -> str:
    naive_part = (f"naive {run['naive_tokens_per_s']:,.0f} tokens/s ({run['naive_s']:.1f} s)"
                  if run["naive_s"] else f"naive: {run['error']}")
    ratio = f" | ratio {run['ratio']:.2f}x" if run["ratio"] else ""
    return (f"batch {run['batch']}: {naive_part} | project {run['project_tokens_per_s']:,.0f} tokens/s "
            f"({run['project_s']:.1f} s){ratio} | project warm-up{' incl. compile' if compiled else ''} "
            f"{run['project_warmup_s']:.1f} s")


def header(args: argparse.Namespace, device: str, model, build_s: float) -> dict[str, Any]:
    """What the figures depend on besides the code: device, versions, model, settings."""
    import transformers

    return {"benchmark": "generation_throughput", "small": args.small,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "model": "tiny llama (2 layers, d=64)" if args.small else "llama-2-7b architecture",
            "dtype": str(model.dtype), "model_build_s": build_s,
            "settings": {"batch_sizes": args.batch_sizes, "prompt_len": args.prompt_len,
                         "new_tokens": args.new_tokens, "repeats": args.repeats, "sample": args.sample,
                         "compile": compiles(args, device)},
            "runs": [], "complete": False}


def write(path: Path | None, figures: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=1) + "\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny Llama architecture on CPU")
    p.add_argument("--batch-sizes", type=int, nargs="+", help="default: 128 256 (GPU), 2 4 (--small)")
    p.add_argument("--prompt-len", type=int, help="default: 64 (GPU), 16 (--small)")
    p.add_argument("--new-tokens", type=int, help="default: 256 (GPU), 16 (--small)")
    p.add_argument("--repeats", type=int, help="timed runs per path, best kept (default: 1 GPU, 2 --small)")
    p.add_argument("--sample", action="store_true", help="sampling (T 0.6, top-p 0.9) instead of greedy")
    p.add_argument("--no-compile", action="store_true", help="project path without static cache/compile")
    p.add_argument("--json", type=Path, help="also write the figures to this file (rewritten per batch size)")
    args = p.parse_args(argv)
    args.batch_sizes = args.batch_sizes or ([2, 4] if args.small else [128, 256])
    args.prompt_len = args.prompt_len or (16 if args.small else 64)
    args.new_tokens = args.new_tokens or (16 if args.small else 256)
    args.repeats = args.repeats or (2 if args.small else 1)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    device = "cpu" if args.small else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("the Llama-2-7B benchmark needs a CUDA GPU; run with --small on CPU")
    started = time.perf_counter()
    model = build_model(args.small, device)
    figures = header(args, device, model, time.perf_counter() - started)
    print(f"device: {figures['device']} ({figures['threads']} CPU threads) | model: {figures['model']} "
          f"(random weights, {model.dtype}) built in {figures['model_build_s']:.1f} s | prompts "
          f"{args.prompt_len} tokens, {args.new_tokens} new tokens, {'sampled' if args.sample else 'greedy'}",
          flush=True)
    write(args.json, figures)
    for batch in args.batch_sizes:
        figures["runs"].append(bench(model, batch, args, device))
        print(describe(figures["runs"][-1], compiles(args, device)), flush=True)
        write(args.json, figures)
    figures["complete"] = True
    write(args.json, figures)


if __name__ == "__main__":
    main()
