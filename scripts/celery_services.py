"""Start and stop the services of a Celery deployment on loopback, for tests and local trials: a Redis
broker, a throw-away PostgreSQL cluster for the Dagster instance, and dagster-celery workers.

Each `start_*` returns a `Service` holding the PID; `stop()` ends it (SIGTERM to its process group, then
SIGKILL after a bounded wait). Everything binds to 127.0.0.1 and lives in the folder given.

    .venv/bin/python scripts/celery_services.py DIR    # Redis + PostgreSQL + two workers until Ctrl-C
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path
    stop_cmd: list[str] = field(default_factory=list)  # a clean stop command, tried before the signal
    cleanup: Path | None = None  # a folder of its own to remove once it has stopped

    def stop(self, timeout: float = 30) -> int:
        """Stop the process and every process of its group (the wrapper's children, e.g. a Celery worker
        finishing its step), then remove its folder. Bounded: SIGKILL after ``timeout``."""
        if self.stop_cmd and self.proc.poll() is None:
            subprocess.run(self.stop_cmd, check=False, timeout=timeout, capture_output=True)
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        deadline = time.time() + timeout
        while _signal_group(self.proc.pid, 0) and time.time() < deadline:
            time.sleep(0.2)
        _signal_group(self.proc.pid, signal.SIGKILL)
        if self.cleanup:
            shutil.rmtree(self.cleanup, ignore_errors=True)
        return self.proc.returncode


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_log(service: Service, text: str, timeout: float = 60) -> None:
    """Until ``text`` appears in the service's log; fails early when the process died."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if service.log.is_file() and text in service.log.read_text(errors="replace"):
            return
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.proc.returncode}; see {service.log}")
        time.sleep(0.3)
    raise TimeoutError(f"{service.name} not ready after {timeout} s ({text!r} not in {service.log})")


def _spawn(name: str, cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> Service:
    # Own process group: stop() reaches the children too (celery under the dagster-celery wrapper).
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)
    return Service(name, proc, log)


def start_redis(work: Path, port: int) -> Service:
    """redis-server on 127.0.0.1:port, no persistence."""
    exe = shutil.which("redis-server")
    if not exe:
        raise FileNotFoundError("redis-server is not installed (Debian: apt-get install -y redis-server)")
    redis = _spawn("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(work)], work / "redis.log")
    wait_for_log(redis, "Ready to accept connections")
    return redis


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else (Path(shutil.which("initdb")).parent if shutil.which("initdb") else None)


def start_postgres(port: int) -> tuple[Service, str]:
    """A throw-away cluster on 127.0.0.1:port (trust auth, loopback only); returns it and its URL.

    PostgreSQL refuses to run as root, so under root it runs as the `postgres` user, in a folder of its
    own under /tmp (pytest's temp folders are not readable by other users)."""
    pg = postgres_bin()
    if pg is None:
        raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install -y postgresql)")
    data = Path(subprocess.check_output(["mktemp", "-d", "/tmp/qos-pg-XXXXXX"], text=True).strip())
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(data, "postgres")
    subprocess.run(as_user + [str(pg / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    log = data / "postgres.log"
    service = _spawn("postgres", as_user + [str(pg / "postgres"), "-D", str(data / "db"), "-h", "127.0.0.1",
                                            "-p", str(port), "-k", str(data)], log)
    service.stop_cmd = as_user + [str(pg / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"]
    service.cleanup = data
    wait_for_log(service, "database system is ready to accept connections")
    # SQLAlchemy 2.1 reads a plain postgresql:// as psycopg 3; dagster-postgres ships with psycopg2.
    return service, f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"


def worker_config(path: Path, broker: str, backend: str) -> Path:
    """The executor config block that workers read (`dagster-celery worker start -y`)."""
    from qos_pipeline.defs.executors import celery_config

    path.write_text(yaml.safe_dump({"execution": {"config": celery_config(broker, backend)}}), encoding="utf-8")
    return path


def start_worker(name: str, queues: list[str], config: Path, env: dict, log: Path) -> Service:
    """`dagster-celery worker start` with one step at a time (solo pool), named ``<name>@<host>``."""
    cmd = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
           "-q", ",".join(queues), "-n", name, "--", "--pool=solo"]
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}"}
    worker = _spawn(f"worker {name}", cmd, log, env=env, cwd=ROOT)
    return worker


def instance_home(home: Path, postgres_url: str | None, gpu_slots: int) -> Path:
    """A Dagster instance that several processes and hosts share: the project's dagster.yaml with
    PostgreSQL storage when given (else SQLite under ``home``), and ``gpu_slots`` GPU steps at once."""
    import dagster as dg

    config = yaml.safe_load((ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    if postgres_url:
        config["storage"] = {"postgres": {"postgres_url": postgres_url}}
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # = `dagster instance concurrency set gpu N`
        instance.event_log_storage.set_concurrency_slots("gpu", gpu_slots)
    return home


def main() -> None:
    work = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path.cwd() / "celery-local"
    work.mkdir(parents=True, exist_ok=True)
    redis_port, pg_port = free_port(), free_port()
    services = [start_redis(work, redis_port)]
    pg, url = start_postgres(pg_port)
    services.append(pg)
    broker, backend = f"redis://127.0.0.1:{redis_port}/0", f"redis://127.0.0.1:{redis_port}/1"
    home = instance_home(work / "home", url, gpu_slots=2)
    env = {**os.environ, "DAGSTER_HOME": str(home), "QOS_CELERY_BROKER": broker, "QOS_CELERY_BACKEND": backend}
    config = worker_config(work / "celery.yaml", broker, backend)
    for name in ("gpu-worker-1", "gpu-worker-2"):
        services.append(start_worker(name, ["gpu", "dagster"], config, env, work / f"{name}.log"))
    print(f"DAGSTER_HOME={home} QOS_EXECUTOR=celery QOS_CELERY_BROKER={broker} QOS_CELERY_BACKEND={backend}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for service in reversed(services):
            service.stop()


if __name__ == "__main__":
    main()
