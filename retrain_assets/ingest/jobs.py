"""The jobs landing_sensor requests: one day's file through ingest and monitoring, or the
reference set."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.scope import SINGLE, Scope

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )


def build_ingest_jobs(daily: dg.PartitionsDefinition, scope: Scope = SINGLE) -> list[AssetJob]:
    ingest_job = dg.define_asset_job(
        scope.name(names.INGEST_JOB),
        selection=scope.selection(
            names.FEATURE_BATCH,
            names.LABEL_BATCH,
            names.DRIFT_REPORT,
            names.PREDICTIONS,
            names.ESTIMATED_PERFORMANCE,
            names.PERFORMANCE_REPORT,
        ),
        partitions_def=daily,
        description="One day's landing file: checked and stored, then monitored (drift report, "
        "predictions and estimated performance for features, performance report for labels).",
        tags=scope.run_tags() or None,
        executor_def=dg.in_process_executor,
    )
    reference_job = dg.define_asset_job(
        scope.name(names.REFERENCE_JOB),
        selection=scope.selection(names.REFERENCE_DATASET, names.REFERENCE_PROFILE),
        description="Check and store the reference set, and profile it for drift.",
        tags=scope.run_tags() or None,
        executor_def=dg.in_process_executor,
    )
    return [ingest_job, reference_job]
