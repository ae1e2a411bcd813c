"""`retrain-assets dev`: the demo feed's data, the MLflow UI and `dg dev`, started together.

Children get default signal handlers (a launcher started in the background inherits ignored
SIGINT/SIGTERM, and then nobody could stop `dg dev`), and whatever was started is stopped on
the way out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from retrain_assets.config import ENV_VAR, config_path, load_config
from retrain_assets.lib.data import feed
from retrain_assets.lib.data import simulate as sim

DEMO_DIR = Path("demo")
STAGED = "feed"  # demo/feed: the simulated days not landed yet
# The demo reacts within seconds of a landing, not every 30 s as a production default would.
DEMO_SETTINGS = {
    "ingest": {"sensor_interval_seconds": 5},
    "drift": {"sensor_interval_seconds": 10},
    "performance": {"sensor_interval_seconds": 10},
    "canary": {"sensor_interval_seconds": 10},
    "guardrail": {"sensor_interval_seconds": 10},
}
DEMO_SPEC = sim.SimulationSpec(
    days=30, rows_per_day=1000, drift="abrupt", drift_day=10, label_delay=2
)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so the finally below stops the children


def _stop(child: subprocess.Popen) -> None:
    """Stop a child and everything it started (its own session)."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def ensure_demo_data(out: Path = DEMO_DIR) -> bool:
    """Simulate the demo feed when neither its landing folder nor its staging folder holds a day;
    the days are held back, to be landed one by one. True when it simulated."""
    landed = out / "landing" / "features"
    if (landed.is_dir() and any(landed.iterdir())) or feed.pending_days(out / STAGED):
        return False
    sim.simulate(out, DEMO_SPEC, overwrite=True)
    config = out / "retrain.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), **DEMO_SETTINGS}))
    feed.hold_back(out / "landing", out / STAGED)
    return True


def run_feed(out: Path, interval: float, stop: threading.Event) -> None:
    """Land one held-back day every `interval` seconds until none is left or `stop` is set."""
    while not stop.wait(interval):
        day = feed.land_next(out / STAGED, out / "landing")
        if day is None:
            return
        print(f"demo feed: landed {day}", file=sys.stderr)


def _tool(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def _spawn(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    # Own session: stopping it stops what it started too (mlflow's uvicorn, dagster's daemon).
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, preexec_fn=_default_signals, start_new_session=True
    )


def dg_dev_command(host: str, port: int, workspace: Path | None) -> list[str]:
    """`dg dev` on the code location: the workspace file when there is one (location name
    `retrain_assets`), else the definitions module. Absolute: it runs in $DAGSTER_HOME."""
    if workspace is not None and workspace.is_file():
        target = ["-w", str(workspace.resolve())]
    else:
        target = ["-m", "retrain_assets.definitions"]
    return [_tool("dg"), "dev", "-h", host, "-p", str(port), *target]


def instance_home(env: dict[str, str]) -> Path | None:
    """Where `dg dev` runs: in $DAGSTER_HOME, made absolute in `env`. Started in the repo, it
    warns that the repo's dagster.yaml (the template `make dev` copies) is not the instance's."""
    if not env.get("DAGSTER_HOME"):
        return None  # dagster then uses a temporary instance, and warns about nothing
    home = Path(env["DAGSTER_HOME"]).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    env["DAGSTER_HOME"] = str(home)
    return home


def run(
    host: str = "127.0.0.1", port: int = 3000, mlflow_port: int = 5000, feed_interval: float = 20.0
) -> int:
    stop = threading.Event()
    if not os.environ.get(ENV_VAR):
        if ensure_demo_data():
            print(f"simulated the demo feed into {DEMO_DIR.resolve()}", file=sys.stderr)
        if feed.pending_days(DEMO_DIR / STAGED):
            threading.Thread(
                target=run_feed, args=(DEMO_DIR, feed_interval, stop), daemon=True
            ).start()
    os.environ[ENV_VAR] = str(config_path())  # absolute: the code server runs in $DAGSTER_HOME
    cfg = load_config()
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    from retrain_assets.resources.mlflow import ensure_experiment

    # Created here first, so the UI and the first run do not race to migrate the database.
    ensure_experiment(
        cfg.tracking_uri, cfg.mlflow.experiment_name, (cfg.workdir / "mlruns").as_uri()
    )
    children: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # The UI needs no server-side job runner (its consumers are four more processes).
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    try:
        children.append(
            _spawn(
                [_tool("mlflow"), "server", "--backend-store-uri", cfg.tracking_uri,
                 "--host", host, "--port", str(mlflow_port), "--workers", "1"],
                env,
            )
        )  # fmt: skip
        home = instance_home(env)
        dagster = _spawn(dg_dev_command(host, port, Path("workspace.yaml")), env, cwd=home)
        children.append(dagster)
        print(f"Dagster UI: http://{host}:{port}   MLflow UI: http://{host}:{mlflow_port}",
              file=sys.stderr)  # fmt: skip
        return dagster.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        stop.set()
        for child in reversed(children):
            _stop(child)
