"""A new sqlite tracking store is created by one process at a time: the models of a fleet share
one store, and two processes migrating a fresh store at once fail (`duplicate column name`)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from pathlib import Path

from retrain_assets.resources.mlflow import ready_store

CREATE = (
    "import sys; from retrain_assets.resources.mlflow import ready_store; ready_store(sys.argv[1])"
)


def test_a_new_store_is_created_with_its_folder(tmp_path: Path) -> None:
    database = tmp_path / "fleet" / ".retrain" / "mlflow.db"
    ready_store(f"sqlite:///{database}")
    assert database.is_file() and database.stat().st_size > 0


def test_a_process_waits_while_another_holds_the_stores_lock(tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    with open(tmp_path / "mlflow.db.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is creating the store
        waiting = subprocess.Popen([sys.executable, "-c", CREATE, uri])
        time.sleep(3)
        assert waiting.poll() is None and not database.exists()  # it waits, touching nothing
    assert waiting.wait(timeout=120) == 0  # the lock is released: it creates the store
    assert database.is_file()


def test_a_tracking_server_needs_nothing(tmp_path: Path) -> None:
    ready_store("http://127.0.0.1:9/")  # nothing listens there: not contacted
