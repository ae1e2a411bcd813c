"""Jobs the sensors request.

retrain_job's executor is the one production switch of the code location (deploy/README.md):
``RETRAIN_EXECUTOR=celery`` runs its steps as tasks on Dagster's celery executor (dagster-celery,
the ``prod`` extra) instead of in the run's own process. Every process that loads the code location
(webserver, daemon, run workers, celery workers) must see the same value, like RETRAIN_CONFIG.
"""

import os

import dagster as dg

from retrain_assets.resources.mlflow import end_mlflow_run_on_failure
from retrain_assets.tags import REASON_TAG

INGEST_JOB = "ingest_job"
REFERENCE_JOB = "reference_job"
RETRAIN_JOB = "retrain_job"
CANARY_JOB = "canary_job"
ROLLBACK_JOB = "rollback_job"

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


def build_jobs(daily: dg.PartitionsDefinition) -> dict:
    """The jobs by name."""
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(
            "feature_batch", "label_batch", "drift_report", "predictions", "performance_report"
        ),
        partitions_def=daily,
        description="One day's landing file: checked and stored, then monitored (drift report and "
        "predictions for features, performance report for labels).",
        executor_def=dg.in_process_executor,
    )
    reference_job = dg.define_asset_job(
        REFERENCE_JOB,
        selection=dg.AssetSelection.assets("reference_dataset", "reference_profile"),
        description="Check and store the reference set, and profile it for drift.",
        executor_def=dg.in_process_executor,
    )
    retrain_job = dg.define_asset_job(
        RETRAIN_JOB,
        selection=dg.AssetSelection.assets(
            "training_dataset",
            "candidate_model",
            "promoted_model",
            "reference_profile",
            "model_history",
        ),
        description="One retraining cycle: training set, candidate, promotion, and the champion's "
        "reference profile. One MLflow run.",
        # Every retraining run carries the tag the run queue limits to one at a time.
        tags={REASON_TAG: "manual"},
        hooks={end_mlflow_run_on_failure},
        executor_def=retrain_executor(),
    )
    canary_job = dg.define_asset_job(
        CANARY_JOB,
        selection=dg.AssetSelection.assets(
            "canary_evaluation", "promoted_model", "reference_profile", "model_history"
        ),
        description="The challenger against the champion on live labelled rows; promotion when "
        "it is not inferior, and the new champion's reference profile.",
        tags={REASON_TAG: "canary"},  # champion changes run one at a time with retrainings
        executor_def=dg.in_process_executor,
    )
    rollback_job = dg.define_asset_job(
        ROLLBACK_JOB,
        selection=dg.AssetSelection.assets("promoted_model", "reference_profile", "model_history"),
        description="Move `champion` back to the version it replaced (set the reason in the "
        "launchpad); the reference profile follows.",
        config={
            "ops": {
                "promoted_model": {
                    "config": {"rollback": True, "reason": "rollback from the Dagster UI"}
                }
            }
        },
        tags={REASON_TAG: "rollback"},
        executor_def=dg.in_process_executor,
    )
    jobs = (ingest_job, reference_job, retrain_job, canary_job, rollback_job)
    return {job.name: job for job in jobs}
