"""retrain_job on Dagster's celery executor, as deploy/README.md runs it: RETRAIN_EXECUTOR=celery,
a Redis broker and result backend, and a `dagster-celery worker start -y deploy/celery.yaml`
worker process that loads the code location with the same config and the same Postgres-backed
instance (deploy/dagster.yaml). The run is orchestrated from this process; every step must have
been executed by a process of the worker's group, and the run must end with a champion."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from mlflow import MlflowClient

from tests.conftest import SMALL, failure_message, make_project, run_requests, tick
from tests.prod.conftest import REPO, claimed_redis_db, pg_env, start_celery_worker

SPEC = dataclasses.replace(SMALL, days=1, drift="none")  # the reference is all training needs
STEPS = {
    "training_dataset",
    "candidate_model",
    "promoted_model",
    "reference_profile",
    "model_history",
}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with claimed_redis_db() as url:
        yield url


# dagster-celery 0.29.27 registers its task again for every step it submits; celery 5.7 warns.
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
def test_retrain_job_steps_run_in_the_celery_worker(
    tmp_path: Path, pg_instance: dg.DagsterInstance, redis_url: str, services, monkeypatch
) -> None:
    instance = pg_instance
    project = make_project(tmp_path / "feed", SPEC)
    env = {
        "RETRAIN_CONFIG": str(project.cfg.source),
        "RETRAIN_EXECUTOR": "celery",
        "RETRAIN_CELERY_BROKER": redis_url,
        "RETRAIN_CELERY_BACKEND": redis_url,
        "DAGSTER_HOME": os.environ["DAGSTER_HOME"],  # set by pg_instance
        **pg_env(instance.pg_db),  # type: ignore[attr-defined]
    }
    name = f"retrain-test-{uuid.uuid4().hex[:8]}"
    worker = start_celery_worker(services, env, tmp_path / "celery_worker.log", name)

    # Meanwhile the reference (in-process, the landing sensor's run): training reads it.
    requests = tick(project, instance, "landing_sensor").run_requests
    [reference] = run_requests(
        project, instance, [r for r in requests if r.job_name == "reference_job"]
    )
    assert reference.success
    worker.wait_for(lambda: " ready." in worker.text(), "celery worker", timeout=120)

    # This process is the run worker: it loads the code location afresh under the same
    # environment (RETRAIN_EXECUTOR=celery), orchestrates, and the worker executes the steps.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delitem(sys.modules, "retrain_assets.definitions", raising=False)
    recon = ReconstructableRepository.for_module(
        "retrain_assets.definitions", "defs", working_directory=str(REPO)
    ).get_reconstructable_job("retrain_job")
    result = dg.execute_job(recon, instance=instance, tags={"retrain/reason": "manual"})
    assert result.success, failure_message(result) + worker.text()[-3000:]
    assert result.job_def.executor_def.name == "retrain_celery_executor"

    events = instance.all_logs(result.run_id)
    hostname = f"{name}@{socket.gethostname()}"
    delegated = {
        e.step_key: e.dagster_event.engine_event_data.metadata["Celery worker"].value
        for e in events
        if e.is_dagster_event
        and e.dagster_event.event_type_value == "ENGINE_EVENT"
        and "in celery worker" in (e.dagster_event.message or "")
    }
    assert set(delegated) >= STEPS and set(delegated.values()) == {hostname}, delegated
    starts = {
        e.step_key: e.dagster_event.pid
        for e in events
        if e.is_dagster_event and e.dagster_event.event_type_value == "STEP_START"
    }
    assert set(starts) >= STEPS
    for step, pid in starts.items():
        assert pid != os.getpid(), step
        assert os.getpgid(pid) == worker.pgid, f"{step} ran in pid {pid}, not in the worker"
    succeeded = {
        e.step_key
        for e in events
        if e.is_dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
    }
    assert succeeded >= STEPS

    # One MLflow run across the steps' processes, finished, and its model is the champion.
    client = MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)
    experiment = client.get_experiment_by_name(project.cfg.mlflow.experiment_name)
    [run] = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.dagster_run_id = '{result.run_id}'"
    )
    assert run.info.status == "FINISHED"
    champion = client.get_model_version_by_alias(project.cfg.model.registered_name, "champion")
    assert champion.run_id == run.info.run_id
