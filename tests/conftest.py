"""Shared fixtures: a small simulated landing folder and Definitions built for it.

Tests run real Dagster (instances, sensors, materialisations) against data in tmp_path; nothing
touches the user's demo folder, DAGSTER_HOME or MLflow store.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

for key, value in {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    # Two pytest workers on two cores: OpenMP thread teams (HistGradientBoosting) would spin
    # against each other and the daemon test's processes, costing 10-20x per fit.
    "OMP_NUM_THREADS": "1",
}.items():
    os.environ.setdefault(key, value)

# DVC's logging binds to the sys.stdout/sys.stderr of its first import: imported inside a test that
# captures output (capsys), every later `dvc add` in the worker would write to a closed stream.
import dvc.repo  # noqa: E402, F401

from retrain_assets.backtest.replay import Replay  # noqa: E402
from retrain_assets.config import RetrainConfig, load_config  # noqa: E402
from retrain_assets.definitions import build_definitions  # noqa: E402
from retrain_assets.lib.data import simulate as sim  # noqa: E402

START = dt.date(2024, 1, 1)
SMALL = sim.SimulationSpec(
    days=8,
    rows_per_day=300,
    drift="abrupt",
    drift_day=4,
    label_delay=1,
    seed=7,
    start_date=START,
    reference_rows=2000,
)

HISTORY_COLUMNS = [
    "day",
    "live_auc",
    "live_metric",
    "estimated_auc",
    "estimated_auc_low",
    "estimated_auc_high",
    "champion_version",
    "drift_share",
    "retrain_reasons",
    "promoted_to",
    "rolled_back_to",
]
"""model_history's table columns, as a reader of the asset's metadata expects them."""


@dataclass
class Project:
    """A simulated landing folder with its config and Definitions."""

    root: Path
    cfg: RetrainConfig
    defs: dg.Definitions

    @property
    def landing(self) -> Path:
        return self.cfg.data.landing_dir

    def hold_back(self) -> None:
        """Move every day file out of the landing folder, to be landed day by day."""
        for kind in ("features", "labels"):
            staged = self.root / "staged" / kind
            staged.mkdir(parents=True, exist_ok=True)
            for path in (self.landing / kind).glob("*.parquet"):
                path.rename(staged / path.name)

    def land_until(self, day: str) -> None:
        """Land the held-back files dated up to `day`, as the days go by."""
        for kind in ("features", "labels"):
            for path in sorted((self.root / "staged" / kind).glob("*.parquet")):
                if path.stem <= day:
                    path.rename(self.landing / kind / path.name)


# Evidently's HTML report takes seconds per batch: on only where a test looks at it. The latency
# gate is wall-clock: a loaded test machine must not fail unrelated tests (it has its own tests).
FAST = {"drift": {"html_report": False}, "gates": {"max_p95_latency_ms": 5000}}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def make_project(
    root: Path, spec: sim.SimulationSpec = SMALL, overrides: dict | None = None
) -> Project:
    """Simulate a feed into root and load its retrain.yaml, with config overrides merged in."""
    sim.simulate(root, spec)
    path = root / "retrain.yaml"
    config = _merge(_merge(yaml.safe_load(path.read_text()), FAST), overrides or {})
    path.write_text(yaml.safe_dump(config))
    cfg = load_config(path)
    return Project(root, cfg, build_definitions(cfg))


@pytest.fixture(autouse=True)
def _no_stale_defs_state_storage():
    """Every test starts without a current defs-state storage. An instance sets one (a context
    variable of the thread) when it is created; a test whose instance is gone would leave it
    behind, and a later test that builds a repository without an instance would fail on the dead
    instance's storage ("undefined DagsterInstance weakref"), depending on which tests the xdist
    worker ran before."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "feed")


@pytest.fixture
def home_instance(tmp_path: Path, monkeypatch):
    """The instance of a fresh $DAGSTER_HOME, the one `retrain-assets rollback` opens itself."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def run_requests(
    project: Project, instance: dg.DagsterInstance, requests, default_job: str | None = None
) -> list:
    """Execute run requests in-process the way the daemon would launch them."""
    results = []
    for request in requests:
        job = project.defs.resolve_job_def(request.job_name or default_job)
        results.append(
            job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                asset_selection=request.asset_selection,
                tags=request.tags,
                run_config=request.run_config or {},
                raise_on_error=False,
            )
        )
    return results


def tick(project: Project, instance: dg.DagsterInstance, sensor: str, cursor: str | None = None):
    context = dg.build_sensor_context(instance=instance, definitions=project.defs, cursor=cursor)
    return project.defs.resolve_sensor_def(sensor).evaluate_tick(context)


def failure_message(result) -> str:
    """The error text of a failed in-process run's failed step(s)."""
    messages = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.step_failure_data.error
        while error is not None:  # the user's exception is the cause of Dagster's wrapper
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


class Loop(Replay):
    """The backtest's Replay over a test project: ticks each sensor with its own cursor like the
    daemon, runs what it requested in-process (skipping run keys already run), until quiet; keeps
    every run's result for assertions."""

    SENSORS = ("landing_sensor", "bootstrap_sensor", "drift_sensor", "performance_sensor")

    def __init__(self, project: Project, instance: dg.DagsterInstance) -> None:
        super().__init__(project.defs, instance, keep_results=True)
        self.project = project

    def settle(self, sensors: tuple[str, ...] = SENSORS, rounds: int = 6) -> list:
        return super().settle(sensors, rounds)

    def retrains(self) -> list:
        return [r for r in self.results if r.dagster_run.job_name == "retrain_job"]


def mark_champion_ready(instance: dg.DagsterInstance) -> None:
    """Record that a champion and its profile exist, for tests of the landing sensor alone."""
    for key in ("promoted_model", "reference_profile"):
        instance.report_runless_asset_event(dg.AssetMaterialization(key))


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, dict]:
    """The newest materialisation's metadata values of each partition of an asset."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=200
    ).records
    out: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        event = record.asset_materialization
        out[event.partition] = {k: v.value for k, v in event.metadata.items()}
    return out
