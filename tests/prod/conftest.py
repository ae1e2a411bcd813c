"""The production profile against real servers: PostgreSQL (127.0.0.1:5432, trust auth, user
postgres), Redis (127.0.0.1:6379). Each test creates its own uniquely named databases and drops
them afterwards, and stops every process it started (own session; SIGTERM, then SIGKILL, to the
whole process group). When a server does not answer on its port, a test skips, saying why; with
the environment variable CI set (`.ci/run` sets it, and installs and starts both servers) it fails,
naming the server and the command that starts it: CI must not pass by skipping these tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# How the servers are started on a Debian machine that has them (`.ci/run` installs them first).
START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": (
        "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
        " --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    ),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(name: str, host: str, port: int) -> None:
    """Skip (fail under CI) unless a server answers on host:port."""
    if answers(host, port):
        return
    reason = f"no {name} server answers on {host}:{port}: the production-profile test needs one"
    if in_ci():
        pytest.fail(f"{reason}. Start it with:  {START[name]}  (or run `bash .ci/run`)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_url(db: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE refuse to run in a transaction
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def pg_query(db: str, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty database named <prefix>_<random>; dropped (connections closed) afterwards."""
    require("PostgreSQL", PG_HOST, PG_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database() -> Callable[[str], str]:
    """Creates fresh databases on demand; drops them all at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda prefix: stack.enter_context(fresh_database(prefix))


class Service:
    """A server process in its own session, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            # Own session and process group: stopping it stops its children too; and it must not
            # inherit an ignored SIGINT/SIGTERM from whatever started pytest.
            preexec_fn=_own_session,
        )

    @property
    def pgid(self) -> int:
        return self.process.pid  # a session leader's pid is its group's id

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{what}: the process exited\n{self.text()[-4000:]}")
            if ready():
                return
            time.sleep(0.2)
        raise AssertionError(f"{what}: not ready within {timeout} s\n{self.text()[-4000:]}")

    def stop(self) -> None:
        # A short grace: `mlflow server` (its job runner) can take over 10 s to act on SIGTERM,
        # and nothing here needs more than a clean close of the servers' own work.
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, sig)
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children that outlived the leader (e.g. pool processes) are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self._out.close()


def _own_session() -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def services() -> Iterator[Callable[..., Service]]:
    """Starts services; stops all of them at teardown, newest first."""
    started: list[Service] = []

    def start(args: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> Service:
        service = Service(args, env, log, cwd)
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture(autouse=True)
def one_openmp_thread(monkeypatch) -> Iterator[None]:
    """Training and single-row predictions with one OpenMP thread, here and in the processes the
    test starts. On a shared 2-core machine, HistGradientBoosting's OpenMP threads spin at their
    barriers while another process holds the cores: a 2,000-row fit plus the latency gate's 200
    predictions measured 11 s instead of 0.5 s. These tests are about the servers, not that."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    import sklearn.ensemble  # noqa: F401  # loads the OpenMP runtime, so the limit reaches it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def pg_env(db: str) -> dict[str, str]:
    """What deploy/dagster.yaml reads from the environment."""
    return {
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": "",  # trust auth here; a real password in production
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_DB": db,
    }


@pytest.fixture
def pg_instance(tmp_path: Path, pg_database, monkeypatch) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance configured by deploy/dagster.yaml, on a fresh Postgres database."""
    db = pg_database("dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for key, value in pg_env(db).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.pg_db = db  # type: ignore[attr-defined]  # for tests that look at the tables
        yield instance


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_mlflow_server(
    start: Callable[..., Service], folder: Path, db: str, workers: int = 1
) -> tuple[str, Path]:
    """An `mlflow server` process as deploy/README.md runs it: its backend store the Postgres
    database `db`, its artifacts in folder/mlflow_artifacts, bound to 127.0.0.1 on a free port;
    (its URL, the artifact folder) once it answers."""
    artifacts = folder / "mlflow_artifacts"
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    server = start(
        [
            str(BIN / "mlflow"), "server",
            # psycopg2 named: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3
            "--backend-store-uri", pg_url(db).replace("postgresql://", "postgresql+psycopg2://"),
            "--artifacts-destination", str(artifacts),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        ],
        env,
        folder / "mlflow_server.log",
        folder,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server.wait_for(lambda: _healthy(url), "mlflow server", timeout=90)
    return url, artifacts


CLAIM = "retrain_assets:test-claim"


@contextlib.contextmanager
def claimed_redis_db() -> Iterator[str]:
    """A Redis database of the caller's own (an empty one, claimed), flushed afterwards: a
    celery worker of another session on the same server must never take this one's tasks."""
    require("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        if client.dbsize() == 0 and client.set(CLAIM, token, nx=True):
            try:
                yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    raise RuntimeError("no empty Redis database among 1-15 to run celery in")


def start_celery_worker(
    start: Callable[..., Service], env: dict[str, str], log: Path, name: str
) -> Service:
    """A `dagster-celery worker start -y deploy/celery.yaml` process (one task at a time) with
    `env` added to this process's environment and the venv's bin on PATH (the command execs
    `celery`)."""
    return start(
        [
            str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
            "-y", str(REPO / "deploy" / "celery.yaml"), "-n", name, "--loglevel", "INFO",
            "--", "--concurrency=1",
        ],
        {**os.environ, **env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        log,
    )  # fmt: skip
