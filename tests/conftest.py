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

for key, value in {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}.items():
    os.environ.setdefault(key, value)

from retrain_assets.config import RetrainConfig, load_config  # noqa: E402
from retrain_assets.defs import build_definitions  # noqa: E402
from retrain_assets.lib import simulate as sim  # noqa: E402

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


@dataclass
class Project:
    """A simulated landing folder with its config and Definitions."""

    root: Path
    cfg: RetrainConfig
    defs: dg.Definitions

    @property
    def landing(self) -> Path:
        return self.cfg.data.landing_dir


def make_project(root: Path, spec: sim.SimulationSpec = SMALL) -> Project:
    sim.simulate(root, spec)
    cfg = load_config(root / "retrain.yaml")
    return Project(root, cfg, build_definitions(cfg))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "feed")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def run_requests(project: Project, instance: dg.DagsterInstance, requests) -> list:
    """Execute sensor run requests in-process the way the daemon would launch them."""
    results = []
    for request in requests:
        job = project.defs.resolve_job_def(request.job_name)
        results.append(
            job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                asset_selection=request.asset_selection,
                tags=request.tags,
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
