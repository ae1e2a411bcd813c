"""Jobs the sensors request."""

import dagster as dg

from retrain_assets.resources.mlflow import end_mlflow_run_on_failure
from retrain_assets.tags import REASON_TAG

INGEST_JOB = "ingest_job"
REFERENCE_JOB = "reference_job"
RETRAIN_JOB = "retrain_job"
CANARY_JOB = "canary_job"
ROLLBACK_JOB = "rollback_job"


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
        executor_def=dg.in_process_executor,
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
