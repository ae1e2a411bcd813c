"""A new user who starts a job before its inputs exist (`dagster job execute -j retrain_job` on a
fresh instance) must read which asset is missing and how to produce it, not a raw
FileNotFoundError with a workdir path."""

from __future__ import annotations

import dagster as dg

from retrain_assets import names
from tests.conftest import Project, failure_message


def test_retrain_job_before_the_reference_names_the_missing_asset(
    project: Project, instance: dg.DagsterInstance
) -> None:
    job = project.defs.resolve_job_def(names.RETRAIN_JOB)
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "reference_dataset has not been materialised yet" in message
    assert "reference_job" in message and "landing_sensor" in message
    assert "FileNotFoundError" not in message


def test_drift_report_before_its_batch_names_the_partition(
    project: Project, instance: dg.DagsterInstance
) -> None:
    drift_report = project.defs.resolve_assets_def(names.DRIFT_REPORT)
    result = dg.materialize(
        [drift_report],
        instance=instance,
        partition_key="2024-01-03",
        raise_on_error=False,
    )
    assert not result.success
    message = failure_message(result)
    assert "feature_batch[2024-01-03] has not been materialised yet" in message
    assert "features/2024-01-03.parquet" in message
