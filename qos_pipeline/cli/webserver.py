"""The Dagster webserver that `qos ui` starts: dagster-webserver's own command, whose app is wrapped in the
request guard (``guard.LocalOnly``) before uvicorn serves it.

    python -m qos_pipeline.cli.webserver [--allow-host NAME ...] -- DAGSTER-WEBSERVER OPTIONS

dagster-webserver offers no hook for middleware, so the guard replaces the function its command calls to build
the app (``create_app_from_workspace_process_context``) with one that wraps what the original returns.
"""

from __future__ import annotations

import argparse
import sys

from qos_pipeline.cli.guard import LocalOnly, served_names


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qos-webserver``: dagster-webserver behind ``LocalOnly`` (``--allow-host`` adds hosts)."""
    own = argparse.ArgumentParser(prog="qos-webserver")
    own.add_argument("--allow-host", action="append", default=[])
    args, rest = own.parse_known_args(sys.argv[1:] if argv is None else argv)
    rest = rest[1:] if rest[:1] == ["--"] else rest
    webserver = argparse.ArgumentParser(add_help=False)
    webserver.add_argument("-h", "--host", default="127.0.0.1")
    webserver.add_argument("-p", "--port", type=int, default=3000)
    bound, _ = webserver.parse_known_args(rest)
    accepted = served_names(bound.host, bound.port, args.allow_host)

    import dagster_webserver.cli as webserver_cli

    build = webserver_cli.create_app_from_workspace_process_context
    # the app dagster-webserver builds, wrapped: an ASGI app called the same way (not a Starlette instance)
    webserver_cli.create_app_from_workspace_process_context = (
        lambda *a, **k: LocalOnly(build(*a, **k), accepted))  # type: ignore[assignment]
    webserver_cli.cli.main(args=rest, prog_name="dagster-webserver", auto_envvar_prefix="DAGSTER_WEBSERVER")


if __name__ == "__main__":
    main()
