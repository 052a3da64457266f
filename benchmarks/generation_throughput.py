"""Generation throughput on real response lengths: naive ``generate`` vs the project's decoders, same run.

    python benchmarks/generation_throughput.py           # Llama-2-7B architecture, CUDA, the default runs
    python benchmarks/generation_throughput.py --small   # a tiny Llama on CPU (seconds)
    python benchmarks/generation_throughput.py --runs naive:256 continuous:flex:512 --json out/gen.json

Rows stop where real responses stop: each row's length is drawn from the token lengths of the pilot's
Llama-2-13b-chat responses (``response_lengths.csv``: median 46, mean 68, 2% past 256) and forced on the
random-weight model by a logits hook keyed by the row's seed (``qos_pipeline.generation.stops``): L tokens,
then eos; capped at ``--new-tokens``. The figure is **useful tokens/s**: the tokens before each row's
stop, over the wall time of the whole run (prefill, scheduling and the tail included), sampled (T 0.6,
top-p 0.9: Llama-2-chat's defaults). Prompts are random token ids, ``--prompt-len`` long. The model has the
exact Llama-2-7B architecture with random bf16 weights: nothing is downloaded.

A run is ``PATH:BATCH`` with options: ``naive:256`` (plain ``generate``, one batch of that many rows,
dynamic cache), ``batched:256:compile`` (the batched decoder: length-sorted static batches, per-row
seeded draws, static cache + compiled forward; two batches), ``continuous:flex:512[:compile][:sync8]
[:nographs]`` (the continuous decoder with that many slots, ``dense`` or ``flex`` attention; ``--rows-per-slot``
rows). Each run's first pass (compile, CUDA-graph capture) is timed apart as ``warmup_s``, on ``BATCH``
rows. The run ``partition`` reruns the best continuous run so far on ``--partition-rows`` rows: as many as
one generator call of a paper-sized audit (generation is partitioned by model x group: 1,792 prompts x 3
samples / 7 groups = 768 rows), where the tail (the last rows, ending while no prompt is left) weighs as
in a real audit; it is skipped when its expected time does not fit the budget.
``--budget-s`` skips what no longer fits. ``--json`` is rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without install
sys.path.insert(0, str(Path(__file__).resolve().parent))

import response_lengths  # noqa: E402
from qos_pipeline.generation.continuous import run_continuous  # noqa: E402
from qos_pipeline.generation.decoding import naive_batches, run_batches  # noqa: E402
from qos_pipeline.generation.sampling import DecodeOptions, SamplingConfig  # noqa: E402
from qos_pipeline.generation.stops import ForcedStops  # noqa: E402

LLAMA2_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                 intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            intermediate_size=128, vocab_size=32000, max_position_embeddings=4096)
PAD, BOS, EOS = 0, 1, 2
GPU_RUNS = ["naive:256", "continuous:dense:256", "continuous:flex:256", "continuous:flex:512",
            "continuous:dense:512", "partition", "batched:256:compile", "continuous:flex:512:compile", "naive:512"]
SMALL_RUNS = ["naive:4", "batched:4", "continuous:dense:4", "continuous:flex:4", "continuous:dense:4:sync1", "partition"]
DECODERS = {"naive": naive_batches, "batched": run_batches, "continuous": run_continuous}


def build_model(config: dict, device: str):
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(**config, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    torch.manual_seed(0)
    with torch.device(device):  # allocate (and randomly initialize) the weights directly on the device
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if device == "cuda" else torch.float32,
                                                 attn_implementation="sdpa")
    return model.eval()


def partition_run(model, figures: dict, work: Workload, args: argparse.Namespace, sampling: SamplingConfig,
              started: float) -> dict[str, Any] | None:
    """The best continuous run so far, on ``--partition-rows`` rows (None when there is none or no rows)."""
    best = max((r for r in figures["runs"] if r["path"] == "continuous" and r["useful_tokens_per_s"]),
               key=lambda r: r["useful_tokens_per_s"], default=None)
    if not best or not args.partition_rows:
        return None
    run = parse_run(best["name"])
    # expected: the best run's rate on this many rows, plus its warm-up, with a margin
    expected = 1.3 * args.partition_rows * figures["settings"]["mean_length"] / best["useful_tokens_per_s"]
    if time.perf_counter() - started + expected + (best["warmup_s"] or 0) > args.budget_s:
        return skipped(run, args.partition_rows)
    return bench(model, run, work, args.partition_rows, sampling)


def parse_run(spec: str) -> dict[str, Any]:
    """``PATH:BATCH[:dense|flex][:compile][:syncN][:nographs]`` (the attention may come before the batch),
    or ``partition``."""
    if spec == "partition":
        return {"path": "partition", "name": "partition"}
    parts = spec.split(":")
    if parts[0] not in DECODERS:
        raise SystemExit(f"run {spec!r}: the path must be one of {sorted(DECODERS)}")
    run = {"path": parts[0], "batch": None, "attention": "dense", "compile": False, "sync_every": 4, "graphs": True}
    for part in parts[1:]:
        if part.isdigit():
            run["batch"] = int(part)
        elif part in ("dense", "flex"):
            run["attention"] = part
        elif part == "compile":
            run["compile"] = True
        elif part == "nographs":
            run["graphs"] = False
        elif part.startswith("sync") and part[4:].isdigit():
            run["sync_every"] = int(part[4:])
        else:
            raise SystemExit(f"run {spec!r}: unknown part {part!r}")
    if not run["batch"]:
        raise SystemExit(f"run {spec!r} has no batch size")
    run["name"] = spec
    return run


class Workload:
    """Rows 0..n-1: random prompts, seeds 0..n-1 and recorded lengths; every run takes a prefix of them."""

    def __init__(self, n: int, args: argparse.Namespace, vocab: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.prompts = torch.randint(3, vocab, (n, args.prompt_len), generator=gen).tolist()
        self.seeds = list(range(n))
        drawn = ([args.fixed_length] * n if args.fixed_length
                 else response_lengths.draw(n, seed=0, scale=args.length_scale))
        self.lengths = [min(x, args.new_tokens) for x in drawn]  # a row longer than the budget is cut there
        self.hook = ForcedStops(self.seeds, self.lengths, EOS)


def decode_rows(model, run: dict, work: Workload, rows: int, sampling: SamplingConfig, engines: dict) -> tuple[float, int]:
    """Seconds and useful tokens (before each row's eos) of one pass of ``run`` over the first ``rows``."""
    options = DecodeOptions(decoder=run["path"], compile=run["compile"], attention=run["attention"],
                            sync_every=run["sync_every"], graphs=run["graphs"])
    extra = {"engines": engines} if run["path"] == "continuous" else {}
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    sync()
    started, useful, seen = time.perf_counter(), 0, 0
    for _, outputs in DECODERS[run["path"]](model, work.prompts[:rows], work.seeds[:rows], sampling, run["batch"],
                                            PAD, frozenset({EOS}), options, hook=work.hook, **extra):
        useful += sum(len(ids) - (reason == "eos") for ids, reason in outputs)
        seen += len(outputs)
    sync()
    assert seen == rows, (seen, rows)
    return time.perf_counter() - started, useful


def rows_of(run: dict, args: argparse.Namespace) -> int:
    return {"naive": 1, "batched": 2}.get(run["path"], args.rows_per_slot) * run["batch"]


def bench(model, run: dict, work: Workload, rows: int, sampling: SamplingConfig) -> dict[str, Any]:
    """One run's record; every key present even when it failed, so readers need no special case."""
    record = {**skipped(run, rows), "error": None}
    engines: dict = {}
    cuda = model.device.type == "cuda"
    try:
        if run["path"] != "naive":  # the one-off costs: compile, graph capture, allocator
            record["warmup_s"], _ = decode_rows(model, run, work, min(rows, run["batch"]), sampling, engines)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        record["seconds"], record["useful_tokens"] = decode_rows(model, run, work, rows, sampling, engines)
        record["useful_tokens_per_s"] = record["useful_tokens"] / record["seconds"]
    except torch.cuda.OutOfMemoryError as exc:
        record["error"] = f"out of GPU memory: {str(exc).splitlines()[0][:200]}"
    except Exception as exc:  # one broken configuration must not cost the others' figures
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    finally:
        engines.clear()
        if cuda:
            record["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.empty_cache()
    return record


def skipped(run: dict, rows: int) -> dict[str, Any]:
    return {**{k: run[k] for k in ("name", "path", "batch", "attention", "compile", "sync_every", "graphs")},
            "rows": rows, "useful_tokens": None, "seconds": None, "useful_tokens_per_s": None, "warmup_s": None,
            "peak_memory_gib": None, "error": "skipped: out of time budget"}


def summarize(figures: dict[str, Any]) -> dict[str, Any]:
    """Best project run, best naive run, their ratio (useful tokens/s)."""
    ok = [r for r in figures["runs"] + figures["partition_runs"] if r["useful_tokens_per_s"]]
    naive = max((r for r in ok if r["path"] == "naive"), key=lambda r: r["useful_tokens_per_s"], default=None)
    best = max((r for r in ok if r["path"] != "naive"), key=lambda r: r["useful_tokens_per_s"], default=None)
    part = next((r for r in figures["partition_runs"] if r["useful_tokens_per_s"]), None)
    pick = lambda r, k: r[k] if r else None  # noqa: E731
    return {"best_run": pick(best, "name"), "best_rows": pick(best, "rows"),
            "best_useful_tokens_per_s": pick(best, "useful_tokens_per_s"),
            "naive_run": pick(naive, "name"), "naive_useful_tokens_per_s": pick(naive, "useful_tokens_per_s"),
            "ratio": best["useful_tokens_per_s"] / naive["useful_tokens_per_s"] if best and naive else None,
            "partition_run": pick(part, "name"), "partition_rows": pick(part, "rows"),
            "partition_useful_tokens_per_s": pick(part, "useful_tokens_per_s")}


def header(args: argparse.Namespace, device: str, model, build_s: float) -> dict[str, Any]:
    """What the figures depend on besides the code: device, versions, model, settings, the lengths."""
    import transformers

    work_lengths = Workload(4096, args, 32000).lengths
    return {"benchmark": "generation_throughput", "small": args.small,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "model": "tiny llama (2 layers, d=64)" if args.small else "llama-2-7b architecture",
            "dtype": str(model.dtype), "model_build_s": build_s,
            "settings": {"runs": args.runs, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
                         "rows_per_slot": args.rows_per_slot, "partition_rows": args.partition_rows,
                         "length_scale": args.length_scale, "fixed_length": args.fixed_length,
                         "sampling": {"temperature": 0.6, "top_p": 0.9}, "budget_s": args.budget_s,
                         "mean_length": sum(work_lengths) / len(work_lengths)},
            "runs": [], "partition_runs": [], "summary": {}, "complete": False}


def describe(r: dict[str, Any]) -> str:
    if r["error"]:
        return f"{r['name']} ({r['rows']} rows): {r['error']}"
    mem = f", peak {r['peak_memory_gib']:.1f} GiB" if r["peak_memory_gib"] is not None else ""
    warm = f", warm-up {r['warmup_s']:.1f} s" if r["warmup_s"] is not None else ""
    return (f"{r['name']} ({r['rows']} rows): {r['useful_tokens_per_s']:,.0f} useful tokens/s "
            f"({r['useful_tokens']:,} in {r['seconds']:.1f} s{warm}{mem})")


def write(path: Path | None, figures: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=1) + "\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny Llama architecture on CPU")
    p.add_argument("--runs", nargs="+", help=f"default: {' '.join(GPU_RUNS)} (--small: {' '.join(SMALL_RUNS)})")
    p.add_argument("--prompt-len", type=int, help="default: 64 (--small: 16)")
    p.add_argument("--new-tokens", type=int, help="token budget per row; default: 256 (--small: 64)")
    p.add_argument("--rows-per-slot", type=int, help="continuous runs: rows = slots x this (default 8; --small 4)")
    p.add_argument("--partition-rows", type=int, help="then the best continuous run on this many rows "
                   "(default 768: one model x group partition of the paper's design; --small 48; 0: none)")
    p.add_argument("--length-scale", type=float, help="recorded lengths times this (default 1; --small 0.25)")
    p.add_argument("--fixed-length", type=int, help="every row exactly this long instead (the old benchmark)")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="skip runs that start later than this")
    p.add_argument("--json", type=Path, help="also write the figures to this file (rewritten per run)")
    args = p.parse_args(argv)
    small = args.small
    args.runs = args.runs or (SMALL_RUNS if small else GPU_RUNS)
    args.prompt_len = args.prompt_len or (16 if small else 64)
    args.new_tokens = args.new_tokens or (64 if small else 256)
    args.rows_per_slot = args.rows_per_slot or (4 if small else 8)
    args.partition_rows = (48 if small else 768) if args.partition_rows is None else args.partition_rows
    args.length_scale = args.length_scale or (0.25 if small else 1.0)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    runs = [parse_run(spec) for spec in args.runs]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    device = "cpu" if args.small else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("the Llama-2-7B benchmark needs a CUDA GPU; run with --small on CPU")
    started = time.perf_counter()
    model = build_model(TINY if args.small else LLAMA2_7B, device)
    figures = header(args, device, model, time.perf_counter() - started)
    sampling = SamplingConfig(do_sample=True, temperature=0.6, top_p=0.9, max_new_tokens=args.new_tokens).resolve()
    work = Workload(max([rows_of(r, args) for r in runs if r["path"] != "partition"] + [args.partition_rows]), args,
                    model.config.vocab_size)
    print(f"device: {figures['device']} | model: {figures['model']} ({model.dtype}, random weights) | prompts "
          f"{args.prompt_len} tokens, recorded lengths (mean {figures['settings']['mean_length']:.0f} after the "
          f"{args.new_tokens}-token cap), sampled", flush=True)
    write(args.json, figures)
    for run in runs:
        if run["path"] == "partition":
            record = partition_run(model, figures, work, args, sampling, started)
            if record:
                figures["partition_runs"].append(record)
                print("one partition: " + describe(record), flush=True)
        elif time.perf_counter() - started > args.budget_s:
            figures["runs"].append(skipped(run, rows_of(run, args)))
        else:
            figures["runs"].append(bench(model, run, work, rows_of(run, args), sampling))
        if run["path"] != "partition":
            print(describe(figures["runs"][-1]), flush=True)
        figures["summary"] = summarize(figures)
        write(args.json, figures)
    figures["summary"] = summarize(figures)
    figures["complete"] = True
    write(args.json, figures)
    s = figures["summary"]
    if s["ratio"]:
        print(f"best: {s['best_run']} {s['best_useful_tokens_per_s']:,.0f} useful tokens/s = {s['ratio']:.1f}x "
              f"naive ({s['naive_run']}: {s['naive_useful_tokens_per_s']:,.0f})", flush=True)


if __name__ == "__main__":
    main()
