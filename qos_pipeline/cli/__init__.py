"""The `qos` command: run the audit through Dagster, ingest recorded outputs, judges, report, UI."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from qos_pipeline.cli.audit import cmd_run
from qos_pipeline.cli.common import DAGSTER_LOG, Expected, file_mask, write_error_log
from qos_pipeline.cli.doctor import add_doctor_parser
from qos_pipeline.cli.evidence import add_evidence_parser
from qos_pipeline.cli.ingest import cmd_ingest
from qos_pipeline.cli.judge import add_judge_parser
from qos_pipeline.cli.label import add_label_parser
from qos_pipeline.cli.trend import add_trend_parser
from qos_pipeline.cli.ui import cmd_ui
from qos_pipeline.cli.warehouse import cmd_rebuild, cmd_report
from qos_pipeline.staging import DISK_FULL, disk_full


def parser() -> argparse.ArgumentParser:
    """The ``qos`` command's argument parser, one sub-command per stage or tool."""
    p = argparse.ArgumentParser(prog="qos", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize the whole audit through Dagster")
    run.add_argument("--model", action="append", help="registry key or HF checkpoint folder (repeatable); "
                     "default: the registry's default (embedded SmolLM2-135M-Instruct)")
    run.add_argument("--family", help="put the --model checkpoints in this checkpoint family (qos trend); default: "
                     "the folder holding a checkpoint whose name or trainer_state.json states a step")
    run.add_argument("--design", help="demo | full | pilot-format folder (default: $QOS_DESIGN, else demo)")
    run.add_argument("--groups", nargs="+", metavar="GROUP", help="only these name groups")
    run.add_argument("--samples", type=int, help="generations per prompt (default: $QOS_SAMPLES, else 3)")
    run.add_argument("--seed", type=int, help="base seed (default: $QOS_SEED, else 0)")
    run.add_argument("--batch-size", type=int, help="default: $QOS_BATCH_SIZE, else 64")
    run.add_argument("--max-new-tokens", type=int, help="default: $QOS_MAX_NEW_TOKENS, else 64")
    run.add_argument("--prompt-format", action="append", metavar="ID",
                     help="prompt-format condition of assets/prompt_formats.yaml (repeatable; default: "
                     "$QOS_PROMPT_FORMATS (comma-separated), else the model's registry format)")
    run.add_argument("--greedy", action="store_true", help="greedy decoding (default: the model's own settings)")
    run.add_argument("--temperature", type=float, help="sampling temperature (default: the model's own)")
    run.add_argument("--top-p", type=float, help="nucleus sampling mass (default: the model's own)")
    run.add_argument("--top-k", type=int, help="top-k filter, 0 = none (default: the model's own)")
    run.add_argument("--compile", action="store_true",
                     help="CUDA: static KV cache + torch.compile (one-off compile, then faster)")
    run.add_argument("--decoder", choices=["batched", "continuous", "naive"],
                     help="batched (default: $QOS_DECODER, else batched), continuous (slots refilled as rows "
                     "end: long audits on a GPU, same rows) or naive (plain generate; a baseline, not cached)")
    run.add_argument("--judge", action="append", default=None,
                     help="judge spec (repeatable; default: $QOS_JUDGES (comma-separated), else rules)")
    run.add_argument("--reference-group", help="default: $QOS_REFERENCE_GROUP, else groups.yaml's")
    run.set_defaults(func=cmd_run)
    ing = sub.add_parser("ingest", help="load recorded outputs (pilot CSV, CSV or JSONL) into generations")
    ing.add_argument("path")
    ing.add_argument("--model", required=True, help="model key for these outputs, e.g. llama-2-13b-chat")
    ing.add_argument("--labels", choices=["human"], help="also load the file's labels as judge 'human'")
    ing.add_argument("--prompt-format", default="recorded", help="prompt-format id to record (default: recorded)")
    ing.add_argument("--replace", action="store_true", help="replace the rows MODEL already holds (generated, or "
                     "recorded from another file) and delete their judgments; without it such a key is refused")
    ing.add_argument("--max-response-chars", type=int, default=100_000, metavar="N",
                     help="refuse a file with a response longer than N characters (default 100000; 0: no limit)")
    ing.set_defaults(func=cmd_ingest)
    rep = sub.add_parser("report", help="print the findings and the main metric tables (or write them as HTML)")
    rep.add_argument("--model", help="only this model key")
    rep.add_argument("--judge", help="only this judge id")
    rep.add_argument("--html", metavar="PATH", help="write one self-contained HTML page (findings, pictures, "
                     "tables, method, provenance) to PATH instead of printing the tables")
    rep.add_argument("--plots", action="store_true",
                     help="write the PNG pictures into the warehouse folder's plots/ instead of printing the tables")
    rep.set_defaults(func=cmd_report)
    reb = sub.add_parser("rebuild", help="rebuild warehouse/qos.duckdb from the staged partitions")
    reb.set_defaults(func=cmd_rebuild)
    ui = sub.add_parser("ui", help="serve the Dagster UI (behind a request guard) and the daemon for this project")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--allow-host", action="append", metavar="NAME[:PORT]",
                    help="also accept requests addressed to this name (besides 127.0.0.1, localhost, [::1])")
    ui.set_defaults(func=cmd_ui)
    add_judge_parser(sub)
    add_label_parser(sub)
    add_evidence_parser(sub)
    add_trend_parser(sub)
    add_doctor_parser(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qos``: parse ``argv`` and run the sub-command; expected errors print one line."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for name in ("qos", "qos_pipeline"):  # ours at INFO (per-batch progress); libraries stay quiet
        logging.getLogger(name).setLevel(logging.INFO)
    args = parser().parse_args(argv)
    DAGSTER_LOG.clear()
    previous = os.umask(file_mask())  # the warehouse, its logs and lock: owner-only unless QOS_UMASK says otherwise
    try:
        args.func(args)
    except Expected as exc:  # no bug: the message alone, no traceback log
        sys.exit(f"qos {args.command}: {' '.join(str(exc).split())}")
    except SystemExit as exc:
        if not isinstance(exc.code, str):  # a plain exit status: not an error message
            raise
        _fail(args.command, argv, exc, exc.code)
    except KeyboardInterrupt:  # no bug: one line, no traceback log
        sys.exit(f"qos {args.command}: interrupted; staged partitions are written whole or not at all, so run "
                 "the command again to finish")
    except Exception as exc:
        # Our error types (DesignError, ModelError, IngestError, WarehouseError, StepFailed, ...) carry the fix;
        # anything else is a bug, reported as such.
        known = isinstance(exc, (ValueError, RuntimeError, OSError))
        if disk_full(exc) and DISK_FULL not in str(exc):  # whatever wrote it: say the disk is full, not the file
            _fail(args.command, argv, exc, f"{DISK_FULL} ({exc})")
        _fail(args.command, argv, exc, str(exc) if known else
              f"unexpected {type(exc).__name__}: {exc}; this is a bug, please report it with the log file")
    finally:
        os.umask(previous)


def _fail(command: str, argv: list[str] | None, exc: BaseException, message: str) -> None:
    """Exit with one short last line naming the problem and what to do; the full traceback (and every Dagster
    message) goes to a log file whose path is printed just before it."""
    try:
        log = write_error_log(command, list(sys.argv[1:] if argv is None else argv), exc)
        print(f"qos {command}: full traceback in {log}", file=sys.stderr)
    except OSError:
        pass  # no place to write it: the message alone
    line = " ".join(str(message).split())
    sys.exit(f"qos {command}: {line if len(line) <= 600 else line[:600] + ' ...'}")


if __name__ == "__main__":
    main()
