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

from retrain_assets.config import ENV_VAR, config_path
from retrain_assets.fleet import Fleet, load_fleet
from retrain_assets.lib.data import feed
from retrain_assets.lib.data import simulate as sim

DEMO_DIR = Path("demo")
"""The demo fleet's folder: one model file per model, each model's feed in a folder of its name."""
STAGED = "feed"  # demo/<model>/feed: the simulated days not landed yet
# The demo reacts within seconds of a landing, not every 30 s as a production default would.
DEMO_SETTINGS = {
    "ingest": {"sensor_interval_seconds": 5},
    "drift": {"sensor_interval_seconds": 10},
    "performance": {"sensor_interval_seconds": 10},
    "canary": {"sensor_interval_seconds": 10},
    "guardrail": {"sensor_interval_seconds": 10},
}
DEMO_MODELS = {
    # The same applicants, three targets, three kinds of change, three label delays.
    "car_loan": sim.SimulationSpec(
        days=30, rows_per_day=1000, drift="abrupt", drift_day=10, label_delay=2
    ),
    "car_loan_repayment": sim.SimulationSpec(
        days=30,
        rows_per_day=1000,
        drift="gradual",
        drift_day=8,
        gradual_days=10,
        label_delay=3,
        seed=1,
        task="multiclass",
    ),
    "car_loan_loss": sim.SimulationSpec(
        days=30, rows_per_day=1000, drift="none", label_delay=5, seed=2, task="regression"
    ),
}
DEMO_SPEC = DEMO_MODELS["car_loan"]
"""The binary model's feed (30 days, abrupt drift from day 10, labels 2 days late)."""


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


def ensure_demo_model(out: Path, name: str, spec: sim.SimulationSpec) -> bool:
    """Simulate one demo model into out/<name>/ and write out/<name>.yaml, when neither its landing
    folder nor its staging folder holds a day; the days are held back, to be landed one by one.
    True when it simulated."""
    from retrain_assets.fleet import fleet_model_contract

    root = out / name
    landed = root / "landing" / "features"
    if (landed.is_dir() and any(landed.iterdir())) or feed.pending_days(root / STAGED):
        return False
    sim.simulate(root, spec, overwrite=True)
    single = root / "retrain.yaml"
    contract = fleet_model_contract(yaml.safe_load(single.read_text()), name)
    text = yaml.safe_dump({**contract, **DEMO_SETTINGS}, sort_keys=False)
    (out / f"{name}.yaml").write_text(text)
    single.unlink()
    feed.hold_back(root / "landing", root / STAGED)
    return True


def ensure_demo_data(out: Path = DEMO_DIR) -> bool:
    """The demo fleet: each model of DEMO_MODELS simulated where it is missing. True when any
    was."""
    if (out / "retrain.yaml").is_file():
        print(
            f"{out}/retrain.yaml is the single-model demo of an earlier release: it loads as a "
            f"model named 'retrain' next to the demo fleet (remove {out}/ for the fleet alone)",
            file=sys.stderr,
        )
    simulated = [ensure_demo_model(out, name, spec) for name, spec in DEMO_MODELS.items()]
    return any(simulated)


def pending(out: Path) -> bool:
    """Whether any demo model still has held-back days."""
    return any(feed.pending_days(out / name / STAGED) for name in DEMO_MODELS)


def run_feed(out: Path, interval: float, stop: threading.Event) -> None:
    """Every `interval` seconds, land the next held-back day of every demo model, until none is
    left or `stop` is set."""
    while not stop.wait(interval):
        landed = {n: feed.land_next(out / n / STAGED, out / n / "landing") for n in DEMO_MODELS}
        if not any(landed.values()):
            return
        days = ", ".join(f"{name} {day}" for name, day in landed.items() if day)
        print(f"demo feed: landed {days}", file=sys.stderr)


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


def prepare_stores(fleet: Fleet) -> str:
    """Create each model's workdir and MLflow experiment before any process starts, so the UI and
    the first runs do not race to migrate the database; the tracking URI the MLflow UI shows (a
    fleet's shared one)."""
    from retrain_assets.resources.mlflow import ensure_experiment

    for broken in fleet.broken:
        print(f"model {broken.name} is not loaded: {broken.error}", file=sys.stderr)
    for cfg in fleet.models.values():
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        ensure_experiment(
            cfg.tracking_uri, cfg.mlflow.experiment_name, (cfg.workdir / "mlruns").as_uri()
        )
    if not fleet.models:
        raise SystemExit(f"no model of {config_path()} loads: fix the files named above")
    return next(iter(fleet.models.values())).tracking_uri


def run(
    host: str = "127.0.0.1", port: int = 3000, mlflow_port: int = 5000, feed_interval: float = 20.0
) -> int:
    stop = threading.Event()
    if not os.environ.get(ENV_VAR):
        if ensure_demo_data():
            print(f"simulated the demo fleet into {DEMO_DIR.resolve()}", file=sys.stderr)
        if pending(DEMO_DIR):
            threading.Thread(
                target=run_feed, args=(DEMO_DIR, feed_interval, stop), daemon=True
            ).start()
    os.environ[ENV_VAR] = str(config_path())  # absolute: the code server runs in $DAGSTER_HOME
    tracking_uri = prepare_stores(load_fleet())
    children: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # The UI needs no server-side job runner (its consumers are four more processes).
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    try:
        children.append(
            _spawn(
                [_tool("mlflow"), "server", "--backend-store-uri", tracking_uri,
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
