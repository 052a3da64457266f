"""Generation throughput: the project's decoding path vs a naive ``model.generate`` baseline, same run.

    python benchmarks/generation_throughput.py            # Llama-2-7B architecture, CUDA, batches 128 and 256
    python benchmarks/generation_throughput.py --small    # a tiny Llama on CPU, 64 new tokens (under a minute)

The model has the exact Llama-2-7B architecture (hidden 4096, 32 layers, 32 heads, MLP 11008, vocab
32000) with random weights: weights do not change throughput, and nothing is downloaded. Prompts are
random token ids (no tokenizer), all ``--prompt-len`` long; every row generates exactly ``--new-tokens``
(eos ignored), so both paths produce the same number of tokens.

- naive: ``model.generate`` on one fixed batch, no length sorting, dynamic KV cache.
- project: ``qos_pipeline.decoding.run_batches`` as ``HFGenerator`` runs it (length-sorted batches, OOM
  back-off, per-row seeded sampling, and on CUDA a static KV cache with a compiled forward). Its first
  pass (warm-up, including the one-off compile) is timed and reported separately from the steady state.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

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


def bench(model, batch: int, args: argparse.Namespace, device: str) -> str:
    gen = torch.Generator().manual_seed(batch)
    prompts = torch.randint(3, model.config.vocab_size, (batch, args.prompt_len), generator=gen).tolist()
    sampling = (SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9) if args.sample
                else SamplingConfig(do_sample=False))
    sampling = dataclasses.replace(sampling, max_new_tokens=args.new_tokens).resolve()
    compiled = device == "cuda" and not args.no_compile
    options = DecodeOptions(compile=compiled, ignore_eos=True)
    # CUDA context and kernels first, not measured
    naive(model, [p[:8] for p in prompts[:2]], dataclasses.replace(sampling, max_new_tokens=2), device)
    warm_s, _ = project(model, prompts, sampling, batch, options, device)
    naive_runs, project_runs = [], []
    for _ in range(args.repeats):  # alternated, best of each: a shared machine's noise only slows runs down
        _free(device)  # each path starts from the same free memory
        try:
            naive_runs.append(naive(model, prompts, sampling, device))
        except torch.cuda.OutOfMemoryError:
            return f"batch {batch}: naive generate ran out of GPU memory; try a smaller --batch-sizes"
        _free(device)
        project_runs.append(project(model, prompts, sampling, batch, options, device))
    (naive_s, naive_tokens), (project_s, project_tokens) = min(naive_runs), min(project_runs)
    assert naive_tokens == project_tokens == batch * args.new_tokens, (naive_tokens, project_tokens)
    naive_tps, project_tps = naive_tokens / naive_s, project_tokens / project_s
    return (f"batch {batch}: naive {naive_tps:,.0f} tokens/s ({naive_s:.1f} s) | project {project_tps:,.0f} "
            f"tokens/s ({project_s:.1f} s) | ratio {project_tps / naive_tps:.2f}x | project warm-up"
            f"{' incl. compile' if compiled else ''} {warm_s:.1f} s")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny Llama architecture on CPU")
    p.add_argument("--batch-sizes", type=int, nargs="+", help="default: 128 256 (GPU), 4 16 (--small)")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, help="default: 256 (GPU), 64 (--small)")
    p.add_argument("--repeats", type=int, help="timed runs per path, best kept (default: 1 GPU, 3 --small)")
    p.add_argument("--sample", action="store_true", help="sampling (T 0.6, top-p 0.9) instead of greedy")
    p.add_argument("--no-compile", action="store_true", help="project path without static cache/compile")
    args = p.parse_args(argv)
    args.new_tokens = args.new_tokens or (64 if args.small else 256)
    args.repeats = args.repeats or (3 if args.small else 1)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    device = "cpu" if args.small else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("the Llama-2-7B benchmark needs a CUDA GPU; run with --small on CPU")
    started = time.perf_counter()
    model = build_model(args.small, device)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name} | model: {'tiny Llama' if args.small else 'Llama-2-7B architecture'} "
          f"(random weights, {model.dtype}) built in {time.perf_counter() - started:.1f} s | prompts "
          f"{args.prompt_len} tokens, {args.new_tokens} new tokens, {'sampled' if args.sample else 'greedy'}",
          flush=True)
    for batch in args.batch_sizes or ([4, 16] if args.small else [128, 256]):
        print(bench(model, batch, args, device), flush=True)


if __name__ == "__main__":
    main()
