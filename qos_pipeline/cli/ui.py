"""`qos ui`: the Dagster UI (behind its request guard, ``guard.py``) and the daemon for this project.

Two processes, as ``dagster dev`` runs them, started and stopped together: ``webserver.py`` (dagster-webserver
with the guard) and ``dagster-daemon run``. Before either starts, the port must be free and no daemon may
already serve the instance (two daemons would fight over every sensor tick).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from qos_pipeline.cli.common import Expected, dagster_home
from qos_pipeline.settings import PROJECT_ROOT

# `env --default-signal` makes a child stop on SIGINT/SIGTERM even when `qos ui` itself was started in the
# background, whose children would otherwise inherit the signals as ignored.
_SIGNALS = ["env", "--default-signal=INT,TERM"]


def ui_command(host: str, port: int) -> list[str]:
    """`qos ui --host HOST --port PORT` (what scripts/ui_smoke.py starts)."""
    return [str(Path(sys.executable).with_name("qos")), "ui", "--host", host, "--port", str(port)]


def children(host: str, port: int, allow_hosts: list[str]) -> list[list[str]]:
    """The daemon and the guarded webserver, each loading the project's definitions."""
    target = ["-m", "qos_pipeline.definitions"]
    allowed = [a for name in allow_hosts for a in ("--allow-host", name)]
    return [[*_SIGNALS, sys.executable, "-m", "dagster._daemon", "run", *target],
            [*_SIGNALS, sys.executable, "-m", "qos_pipeline.cli.webserver", *allowed, "--", "-h", host,
             "-p", str(port), *target]]


def exposure_warning(host: str, port: int) -> str | None:
    """Why binding ``host`` is risky, or None for a loopback address (the default): the Dagster UI has no
    login, and whoever reaches it can launch runs, turn sensors on and read every output."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        loopback = False
    if loopback:
        return None
    return (f"warning: --host {host} serves the Dagster UI beyond this machine, without any login: anyone who can "
            f"reach port {port} can launch runs, start sensors and read every prompt and response. Prefer the "
            f"default 127.0.0.1 and an SSH tunnel (ssh -L {port}:127.0.0.1:{port} THIS_HOST), or put an "
            "authenticating proxy in front")


def port_user(host: str, port: int) -> str | None:
    """Who listens on ``host:port`` (pid and command), or None when the port is free to bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no user
        try:
            probe.bind((host, port))
            return None
        except OSError:
            pass
    import psutil

    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:160]})"
    except (psutil.Error, OSError):  # another user's sockets: not ours to see
        pass
    return "another process"


def running_daemons(home: Path) -> list[str]:
    """Dagster daemons (`dagster-daemon run`, `dagster dev`'s, another `qos ui`'s) serving the instance in
    ``home``, as 'pid N'."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if not any(a.endswith("dagster-daemon") or a == "dagster._daemon" for a in cmd) or proc.pid == os.getpid():
            continue
        try:
            theirs = proc.environ().get("DAGSTER_HOME")
        except psutil.Error:
            continue
        if theirs and Path(theirs).resolve() == home.resolve():
            found.append(f"pid {proc.pid}")
    return found


def cmd_ui(args: argparse.Namespace) -> None:
    """``qos ui``: start the Dagster UI (warning when it is reachable from other hosts)."""
    warning = exposure_warning(args.host, args.port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    busy = port_user(args.host, args.port)
    if busy:
        raise Expected(f"port {args.port} on {args.host} is in use by {busy}; stop it, or give another --port")
    home = dagster_home()
    daemons = running_daemons(home)
    if daemons:
        raise Expected(f"a Dagster daemon already serves this instance ({home}): {', '.join(daemons)}; a second "
                       "would fight it over every sensor tick: stop that `qos ui` (or dagster dev) first")
    print(f"Dagster UI and daemon on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops both")
    os.chdir(PROJECT_ROOT)
    code = serve(children(args.host, args.port, args.allow_host or []))
    if code:
        raise SystemExit(code)


def serve(commands: list[list[str]]) -> int:
    """Run ``commands`` together until one ends or this process gets SIGINT/SIGTERM; then stop the others.
    Returns the exit status of the one that ended first (0 when stopped by a signal)."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    procs = [subprocess.Popen(cmd) for cmd in commands]
    code = 0
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        code = next(p.returncode for p in procs if p.poll() is not None)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        signal.signal(signal.SIGTERM, previous)
    return code
