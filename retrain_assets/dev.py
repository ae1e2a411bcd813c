"""`retrain-assets dev`: the demo feed's data, the MLflow UI and `dagster dev`, started together.

Children get default signal handlers (a launcher started in the background inherits ignored
SIGINT/SIGTERM, and then nobody could stop `dagster dev`), and whatever was started is stopped on
the way out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from retrain_assets.config import ENV_VAR, config_path, load_config
from retrain_assets.lib import simulate as sim

DEMO_DIR = Path("demo")
DEMO_SPEC = sim.SimulationSpec(
    days=30, rows_per_day=1000, drift="abrupt", drift_day=10, label_delay=2
)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def ensure_demo_data(out: Path = DEMO_DIR) -> bool:
    """Simulate the demo feed when its landing folder is empty; True when it did."""
    features = out / "landing" / "features"
    if features.is_dir() and any(features.iterdir()):
        return False
    sim.simulate(out, DEMO_SPEC, overwrite=True)
    return True


def _tool(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def run(host: str = "127.0.0.1", port: int = 3000, mlflow_port: int = 5000) -> int:
    if not os.environ.get(ENV_VAR):
        if ensure_demo_data():
            print(f"simulated the demo feed into {DEMO_DIR.resolve()}", file=sys.stderr)
        os.environ[ENV_VAR] = str(config_path())
    cfg = load_config()
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    from retrain_assets.resources.mlflow import ensure_experiment

    # Created here first, so the UI and the first run do not race to migrate the database.
    ensure_experiment(
        cfg.tracking_uri, cfg.mlflow.experiment_name, (cfg.workdir / "mlruns").as_uri()
    )
    children: list[subprocess.Popen] = []
    try:
        children.append(
            subprocess.Popen(
                [
                    _tool("mlflow"),
                    "server",
                    "--backend-store-uri",
                    cfg.tracking_uri,
                    "--host",
                    host,
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                preexec_fn=_default_signals,
            )
        )
        target = (
            ["-w", "workspace.yaml"]
            if Path("workspace.yaml").is_file()
            else ["-m", "retrain_assets.definitions"]
        )
        dagster = subprocess.Popen(
            [_tool("dagster"), "dev", "-h", host, "-p", str(port), *target],
            preexec_fn=_default_signals,
        )
        children.append(dagster)
        print(
            f"Dagster UI: http://{host}:{port}   MLflow UI: http://{host}:{mlflow_port}",
            file=sys.stderr,
        )
        return dagster.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
