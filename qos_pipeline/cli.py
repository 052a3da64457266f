"""The `qos` command: run the audit through Dagster, ingest recorded outputs, print the report."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from qos_pipeline.settings import PROJECT_ROOT, dagster_home, env_int, env_str, project_paths
from qos_pipeline.generation.formats import FORMATS_ENV, parse_ids
from qos_pipeline.staging import partition_file, write_partition

log = logging.getLogger("qos")


def _instance():
    """The project's Dagster instance (``.dagster/`` unless DAGSTER_HOME is set), so runs show in the UI."""
    import dagster as dg

    dagster_home()
    return dg.DagsterInstance.get()


def _execute(defs, job: str, instance, partition_key=None) -> None:
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, run_config=run_config, raise_on_error=False)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise SystemExit(f"{job} [{partition_key}] failed (run {result.run_id}): {failures[-1] if failures else ''}")


def cmd_run(args: argparse.Namespace) -> None:
    from qos_pipeline.definitions import build_definitions
    from qos_pipeline.defs.partitions import GROUPS, REFERENCE_GROUP, model_group_key
    from qos_pipeline.defs.resources import AuditConfig, GeneratorResource
    from qos_pipeline.prompts.design import load_design
    from qos_pipeline.generation.models.registry import load_registry
    from qos_pipeline.generation.formats import select_formats
    from qos_pipeline.generation.models.added import register

    paths = project_paths()
    design_arg = str(Path(args.design).resolve()) if Path(args.design).is_dir() else args.design
    design = load_design(design_arg, paths.assets)
    groups = [g for g in design.groups if g in GROUPS and (not args.groups or g in args.groups)]
    if not groups:
        raise SystemExit(f"no groups to run: design {design.name} has {design.groups}, requested {args.groups}")
    models = args.model or [load_registry(paths.assets)["default"]]
    keys = [register(str(Path(m).resolve()) if Path(m).is_dir() else m, paths).key for m in models]
    formats = args.prompt_format or parse_ids(os.environ.get(FORMATS_ENV))
    if formats:
        select_formats(paths.assets, formats)  # an unknown id fails here, before any run starts
    audit = AuditConfig(design=design_arg, samples=args.samples, seed=args.seed, batch_size=args.batch_size,
                        max_new_tokens=args.max_new_tokens, judges=args.judge,
                        reference_group=args.reference_group or REFERENCE_GROUP,
                        prompt_formats=formats, do_sample=_do_sample(args),
                        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    generator = GeneratorResource(compile=True) if args.compile else None
    defs = build_definitions(generator=generator, audit=audit)
    instance = _instance()
    instance.add_dynamic_partitions("model", [k for k in keys if not instance.has_dynamic_partition("model", k)])
    start = time.perf_counter()
    for group in groups:
        _execute(defs, "prompts_job", instance, group)
    for key in keys:
        for group in groups:
            log.info("audit %s | %s", key, group)
            _execute(defs, "audit_job", instance, model_group_key(key, group))
    _execute(defs, "metrics_job", instance)
    log.info("audit finished in %.0f s: %s", time.perf_counter() - start, paths.db)
    _print_report(paths.db, None, None)


def _do_sample(args: argparse.Namespace) -> bool | None:
    """--greedy: off; a sampling setting given: on (it would be ignored otherwise); else the model's default."""
    if args.greedy:
        return False
    return True if any(v is not None for v in (args.temperature, args.top_p, args.top_k)) else None


def cmd_ingest(args: argparse.Namespace) -> None:
    import dagster as dg

    from qos_pipeline.ingest import recorded as ingest
    from qos_pipeline.definitions import build_definitions
    from qos_pipeline.defs.partitions import GROUPS, model_group_key

    paths = project_paths()
    path = Path(args.path).resolve()
    run_id = "ingest-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    df = ingest.load_recorded(path, paths.assets)
    parts = ingest.to_partitions(df, path, args.model, args.prompt_format, run_id, args.labels == "human")
    unknown = sorted(set(parts) - set(GROUPS))
    if unknown:
        raise SystemExit(f"{path}: groups {unknown} are not in assets/groups.yaml ({GROUPS}); add them there first")
    instance = _instance()
    if not instance.has_dynamic_partition("model", args.model):
        instance.add_dynamic_partitions("model", [args.model])
    for group, (gen, judg) in parts.items():
        write_partition(gen, partition_file(paths.staging, "generations", group, args.model))
        key = model_group_key(args.model, group)
        events = [dg.AssetMaterialization("generations", partition=key, metadata={"rows": len(gen), "source": str(path)})]
        if judg is not None:
            write_partition(judg, partition_file(
                paths.staging, "judgments", group, args.model, ingest.HUMAN_JUDGE))
            events.append(dg.AssetMaterialization("judgments", partition=key, metadata={"rows": len(judg), "judge": "human"}))
        for event in events:
            instance.report_runless_asset_event(event)
        log.info("ingested %s rows of %s into generations[%s|%s]", len(gen), path.name, args.model, group)
    _execute(build_definitions(), "metrics_job", instance)
    _print_report(paths.db, args.model, None)


def _print_report(db: Path, model: str | None, judge: str | None) -> None:
    from qos_pipeline.metrics.report import build_report, format_report

    print(format_report(build_report(db, model, judge)))


def cmd_report(args: argparse.Namespace) -> None:
    _print_report(project_paths().db, args.model, args.judge)


def cmd_rebuild(args: argparse.Namespace) -> None:
    from qos_pipeline.definitions import build_definitions

    _execute(build_definitions(), "metrics_job", _instance())


def dagster_dev_command(host: str, port: int) -> list[str]:
    """`dagster dev` (UI + daemon) for this project. `env --default-signal` makes it stop on SIGTERM even
    when started in the background, where it would otherwise ignore the signal."""
    dagster = Path(sys.executable).with_name("dagster")
    return ["env", "--default-signal=INT,TERM", str(dagster), "dev", "-m", "qos_pipeline.definitions",
            "-h", host, "-p", str(port)]


def cmd_ui(args: argparse.Namespace) -> None:
    home = dagster_home()
    print(f"Dagster UI and daemon on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops both")
    os.chdir(PROJECT_ROOT)
    cmd = dagster_dev_command(args.host, args.port)
    os.execvp(cmd[0], cmd)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qos", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize the whole audit through Dagster")
    run.add_argument("--model", action="append", help="registry key or HF checkpoint folder (repeatable); "
                     "default: the registry's default (embedded SmolLM2-135M-Instruct)")
    run.add_argument("--design", default=env_str("QOS_DESIGN", "demo"), help="demo | full | pilot-format folder")
    run.add_argument("--groups", nargs="*", help="only these name groups")
    run.add_argument("--samples", type=int, default=env_int("QOS_SAMPLES", 3), help="generations per prompt")
    run.add_argument("--seed", type=int, default=env_int("QOS_SEED", 0))
    run.add_argument("--batch-size", type=int, default=env_int("QOS_BATCH_SIZE", 64))
    run.add_argument("--max-new-tokens", type=int, default=env_int("QOS_MAX_NEW_TOKENS", 64))
    run.add_argument("--prompt-format", action="append", metavar="ID",
                     help="prompt-format condition of assets/prompt_formats.yaml (repeatable; "
                     f"default: ${FORMATS_ENV} (comma-separated), else the model's registry format)")
    run.add_argument("--greedy", action="store_true", help="greedy decoding (default: the model's own settings)")
    run.add_argument("--temperature", type=float, help="sampling temperature (default: the model's own)")
    run.add_argument("--top-p", type=float, help="nucleus sampling mass (default: the model's own)")
    run.add_argument("--top-k", type=int, help="top-k filter, 0 = none (default: the model's own)")
    run.add_argument("--compile", action="store_true", default=env_str("QOS_COMPILE", "0") == "1",
                     help="CUDA: static KV cache + torch.compile (one-off compile, then faster)")
    run.add_argument("--judge", action="append", default=None, help="judge id (repeatable; default rules)")
    run.add_argument("--reference-group", default=os.environ.get("QOS_REFERENCE_GROUP"))
    run.set_defaults(func=cmd_run)
    ing = sub.add_parser("ingest", help="load recorded outputs (pilot CSV, CSV or JSONL) into generations")
    ing.add_argument("path")
    ing.add_argument("--model", required=True, help="model key for these outputs, e.g. llama-2-13b-chat")
    ing.add_argument("--labels", choices=["human"], help="also load the file's labels as judge 'human'")
    ing.add_argument("--prompt-format", default="recorded", help="prompt-format id to record (default: recorded)")
    ing.set_defaults(func=cmd_ingest)
    rep = sub.add_parser("report", help="print the main metric tables")
    rep.add_argument("--model")
    rep.add_argument("--judge")
    rep.set_defaults(func=cmd_report)
    reb = sub.add_parser("rebuild", help="rebuild warehouse/qos.duckdb from the staged partitions")
    reb.set_defaults(func=cmd_rebuild)
    ui = sub.add_parser("ui", help="serve the Dagster UI and daemon for this project (dagster dev)")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    from qos_pipeline.cli_judge import add_judge_parser  # `qos judge train|validate`

    add_judge_parser(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for name in ("qos", "qos_pipeline"):  # ours at INFO (per-batch progress); libraries stay quiet
        logging.getLogger(name).setLevel(logging.INFO)
    args = parser().parse_args(argv)
    if getattr(args, "judge", None) is None and args.command == "run":
        args.judge = env_str("QOS_JUDGES", "rules").split(",")
    try:
        args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        # Our error types (DesignError, ModelError, IngestError, WarehouseError, ...) carry the fix.
        sys.exit(f"qos {args.command}: {exc}")


if __name__ == "__main__":
    main()
