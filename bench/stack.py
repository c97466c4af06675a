"""The processes a benchmark runs against: a fresh database, gunicorn, Celery workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's database, then migrate it: every run starts empty."""
    import psycopg
    from psycopg import sql

    name = database_name(url)
    if "bench" not in name:
        # A benchmark drops its database: refuse anything not obviously made for it.
        raise SystemExit(f"bench: refusing to drop database {name!r}; its name must contain 'bench'")
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=os.environ.copy(), check=True
    )


def clear_broker(url: str) -> None:
    """Empty the default queue and the unacked bookkeeping of the benchmark's Redis db."""
    import redis

    client = redis.Redis.from_url(url)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()


def queue_length(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.llen("celery"))
    finally:
        client.close()


class Processes:
    """Started processes, each in its own process group, all stopped by stop_all()."""

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.log_dir = log_dir
        self.env = env
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, name: str, argv: list[str], pass_fds=(), extra_env=None) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=pass_fds, start_new_session=True,
            )
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def gunicorn(self, workers: int, worker_class: str | None, threads: int | None) -> tuple[subprocess.Popen, str]:
        """gunicorn with the project's gunicorn.conf.py, on a socket bound here; returns it and its URL."""
        # The socket is bound here and handed over: no race for a "free" port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        port = sock.getsockname()[1]
        argv = [
            str(BIN / "gunicorn"), "console.wsgi:application",
            "--bind", f"fd://{sock.fileno()}",
            "--workers", str(workers), "--graceful-timeout", "5", "--log-level", "warning",
        ]
        if worker_class:
            argv += ["--worker-class", worker_class]
        if threads:
            argv += ["--threads", str(threads)]
        proc = self._spawn("gunicorn", argv, pass_fds=(sock.fileno(),))
        sock.close()
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", proc)
        return proc, url

    def celery_worker(self, name: str, concurrency: int, extra_env=None) -> subprocess.Popen:
        argv = [
            str(BIN / "celery"), "-A", "console", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h",
        ]
        return self._spawn(f"celery-{name}", argv, extra_env=extra_env)

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def gunicorn_conf() -> dict:
    """The settings in the project's gunicorn.conf.py (what a deployment runs with)."""
    import runpy

    path = ROOT / "gunicorn.conf.py"
    return runpy.run_path(str(path)) if path.exists() else {}


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {proc.args[0]} exited; see {proc.log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"bench: {url} did not answer within {timeout}s; see {proc.log}")


# --- CPU accounting: on a shared machine, CPU seconds per event say more than wall time ---

_TICK = os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """Processes of a process group (a gunicorn master and its workers, a Celery worker and its pool)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU seconds each process has used so far (Linux /proc)."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, IndexError, ValueError):
            pass
    return out


def database_backends() -> list[int]:
    """Server processes of the connections open to this database (Django's persistent ones)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


class CpuMeter:
    """CPU used by some processes between start() and stop(); pids seen only at the end count from 0."""

    def __init__(self, pids_fn):
        self.pids_fn = pids_fn
        self.before: dict[int, float] = {}

    def start(self) -> None:
        self.before = cpu_seconds(self.pids_fn())

    def stop(self) -> float:
        after = cpu_seconds(set(self.pids_fn()) | set(self.before))
        return sum(max(0.0, t - self.before.get(pid, 0.0)) for pid, t in after.items())
