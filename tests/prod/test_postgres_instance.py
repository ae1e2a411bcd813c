"""The loop on the production instance: deploy/dagster.yaml as shipped (dagster-postgres storage,
the run queue), on a fresh PostgreSQL database. The sensors are driven in-process like the daemon
drives them; runs, events, check results and cursors go to Postgres, and the test reads them back
from its tables as well as through Dagster."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient

from tests.conftest import SMALL, Loop, failure_message, make_project
from tests.prod.conftest import pg_query

# Drift from the third day: drifted on days 3-5, the second in a row (day 4) retrains, and the
# cooldown (counted from the bootstrap's data day, the day before the first) holds day 5 back:
# exactly one drift retraining keeps the test short.
SPEC = dataclasses.replace(SMALL, days=5, drift_day=2)
OVERRIDES = {
    "canary": {"mode": "none"},  # the drift retraining's candidate is promoted by the same run
    "guardrail": {"enabled": False},
    "drift": {"cooldown_days": 3},
}


def test_the_loop_on_postgres_storage(tmp_path: Path, pg_instance: dg.DagsterInstance) -> None:
    instance = pg_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    queue = instance.run_coordinator.get_run_queue_config()
    assert {"key": "retrain/reason", "limit": 1} in queue.tag_concurrency_limits
    assert not instance.telemetry_enabled

    project = make_project(tmp_path / "feed", SPEC, OVERRIDES)
    loop = Loop(project, instance)
    loop.settle()
    assert all(r.success for r in loop.results), [failure_message(r) for r in loop.results]

    # Landing runs: one per file (reference + every features and labels day), all succeeded.
    landed = [r for r in instance.get_run_records() if "landing/file" in r.dagster_run.tags]
    assert len(landed) == 1 + 2 * SPEC.days  # labels of the last day land the day after
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in landed)

    # Drift reports for every day, the drifted ones failing their (WARN) check.
    drifted = {}
    for record in instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("drift_report")), limit=100
    ).records:
        drifted[record.asset_materialization.partition] = record.asset_materialization.metadata[
            "drifted"
        ].value
    assert len(drifted) == SPEC.days and any(drifted.values()) and not all(drifted.values())
    check = dg.AssetCheckKey(dg.AssetKey("drift_report"), "drift_report_within_threshold")
    verdicts = [
        r.event.dagster_event.event_specific_data
        for r in instance.event_log_storage.get_asset_check_execution_history(check, limit=50)
    ]
    assert sorted(v.passed for v in verdicts) == sorted(not d for d in drifted.values())
    assert all(v.severity == dg.AssetCheckSeverity.WARN for v in verdicts if not v.passed)

    # A retraining tagged with the drift reason, which moved the champion.
    reasons = [r.dagster_run.tags["retrain/reason"] for r in loop.retrains()]
    assert reasons[0] == "bootstrap" and reasons.count("drift") == 1, reasons
    drift_run = next(r for r in loop.retrains() if r.dagster_run.tags["retrain/reason"] == "drift")
    assert "drifted batches in a row" in drift_run.dagster_run.tags["retrain/evidence"]
    client = MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)
    champion = client.get_model_version_by_alias(project.cfg.model.registered_name, "champion")
    assert str(champion.version) != "1"
    assert client.get_run(champion.run_id).data.tags["dagster_run_id"] == drift_run.run_id

    # It is all in Postgres: its tables hold the runs, the drift retraining's tag and the drift
    # reports' materialisations.
    db = instance.pg_db  # type: ignore[attr-defined]
    [(runs,)] = pg_query(db, "select count(*) from runs")
    assert runs == len(instance.get_run_records())
    [(tagged,)] = pg_query(
        db,
        "select count(*) from run_tags where key = 'retrain/reason' and value = 'drift' "
        f"and run_id = '{drift_run.run_id}'",
    )
    assert tagged == 1
    [(materialized,)] = pg_query(
        db,
        "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' "
        "and asset_key like '%drift_report%'",
    )
    assert materialized == SPEC.days
