"""retrain_job: one retraining cycle, one MLflow run.

Its executor is the one production switch of the code location (deploy/README.md):
``RETRAIN_EXECUTOR=celery`` runs its steps as tasks on Dagster's celery executor (dagster-celery,
the ``prod`` extra) instead of in the run's own process. Every process that loads the code location
(webserver, daemon, run workers, celery workers) must see the same value, like RETRAIN_CONFIG.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.resources.mlflow import end_mlflow_run_on_failure
from retrain_assets.scope import MLFLOW, SINGLE, Scope

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )

EXECUTOR_ENV = "RETRAIN_EXECUTOR"
"""``in_process`` (default) or ``celery``: where retrain_job's steps execute."""
CELERY_BROKER_ENV = "RETRAIN_CELERY_BROKER"
"""celery: the broker URL (default redis://127.0.0.1:6379/0)."""
CELERY_BACKEND_ENV = "RETRAIN_CELERY_BACKEND"
"""celery: the result backend URL (default redis://127.0.0.1:6379/1)."""
CELERY_DEFAULTS = {"broker": "redis://127.0.0.1:6379/0", "backend": "redis://127.0.0.1:6379/1"}


def celery_config() -> dict:
    """The celery executor's config, as a worker's ``-y`` file holds it under execution.config.

    A URL set in the environment stays a Dagster ``{env: NAME}`` source: it is read where the run
    starts, so a password in it is stored nowhere.
    """
    envs = {"broker": CELERY_BROKER_ENV, "backend": CELERY_BACKEND_ENV}
    return {
        key: {"env": env} if os.environ.get(env) else CELERY_DEFAULTS[key]
        for key, env in envs.items()
    }


def retrain_executor() -> dg.ExecutorDefinition:
    """retrain_job's executor, chosen by $RETRAIN_EXECUTOR."""
    kind = os.environ.get(EXECUTOR_ENV, "").strip() or "in_process"
    if kind == "in_process":
        return dg.in_process_executor
    if kind != "celery":
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected in_process or celery")
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise ImportError(
            f"{EXECUTOR_ENV}=celery needs dagster-celery: pip install 'retrain_assets[prod]'"
        ) from exc
    return celery_executor.configured(celery_config(), name="retrain_celery_executor")


def build_retrain_job(scope: Scope = SINGLE) -> AssetJob:
    return dg.define_asset_job(
        scope.name(names.RETRAIN_JOB),
        selection=scope.selection(
            names.TRAINING_DATASET,
            names.CANDIDATE_MODEL,
            names.PROMOTED_MODEL,
            names.REFERENCE_PROFILE,
            names.MODEL_HISTORY,
        ),
        description="One retraining cycle: training set, candidate, promotion, and the champion's "
        "reference profile. One MLflow run.",
        # Every retraining run carries the tag the run queue limits to one at a time.
        tags=scope.run_tags({names.REASON_TAG: "manual"}),
        hooks={end_mlflow_run_on_failure(scope.resource(MLFLOW))},
        executor_def=retrain_executor(),
    )
