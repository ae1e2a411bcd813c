"""The longer trigger tests: quiet on four weeks of seasonal wobble; concept drift through live
performance while drift stays quiet; the weekly schedule as the fallback, held back while a
challenger awaits its canary. A file of their own so that the two test workers share the trigger
tests (pytest-xdist gives each worker whole files: ``--dist loadfile``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg

from tests.conftest import FAST, SMALL, Loop, make_project, run_requests, tick
from tests.dagster.test_triggers import DRIFT_SENSORS, NO_DRIFT, _day, _drift_reports


def test_seasonal_wobble_over_four_weeks_never_retrains(tmp_path: Path, instance) -> None:
    # Four whole weeks: every weekday of the wobble twice (the full policy over seasonal data,
    # performance and concept triggers included, is tests/dagster/test_backtest.py's).
    spec = dataclasses.replace(SMALL, drift="seasonal", days=28, rows_per_day=600)
    project = make_project(tmp_path, spec)
    loop = Loop(project, instance)
    loop.settle(("landing_sensor", "bootstrap_sensor"))  # reference and champion first
    job = project.defs.resolve_job_def("ingest_job")
    for i in range(28):  # only what drift needs: each day's batch and its drift report
        result = job.execute_in_process(
            instance=instance,
            partition_key=_day(i),
            asset_selection=[dg.AssetKey("feature_batch"), dg.AssetKey("drift_report")],
        )
        assert result.success
    assert tick(project, instance, "drift_sensor").run_requests == []
    verdicts = _drift_reports(instance)
    assert len(verdicts) == 28 and sum(verdicts.values()) == 0


def test_concept_drift_triggers_through_performance_not_drift(tmp_path: Path, instance) -> None:
    spec = dataclasses.replace(SMALL, drift="concept", days=10, drift_day=3, rows_per_day=400)
    project = make_project(tmp_path, spec)
    loop = Loop(project, instance)
    loop.settle()
    reasons = [r.dagster_run.tags["retrain/reason"] for r in loop.retrains()]
    # The features never moved (no drift report drifted), the labels' relation to them did: the
    # first trigger is concept drift, not mere degradation and not covariate drift.
    assert reasons[:2] == ["bootstrap", "concept"] and "drift" not in reasons
    assert not any(_drift_reports(instance).values())
    trigger = loop.retrains()[1]
    assert "auc" in trigger.dagster_run.tags["retrain/evidence"]
    day = trigger.dagster_run.tags["retrain/data_day"]
    assert day > _day(3)
    # No more than one retraining per data day.
    days = [r.dagster_run.tags["retrain/data_day"] for r in loop.retrains()]
    assert len(days) == len(set(days))
    report = instance.get_latest_materialization_event(dg.AssetKey("performance_report"))
    meta = report.asset_materialization.metadata
    assert {"auc", "baseline_auc", "n_labels", "degraded", "concept_drift"} <= set(meta)


def test_weekly_schedule_retrains_when_the_last_retrain_is_old(tmp_path: Path, instance) -> None:
    # canary mode none: a shadow challenger would (rightly) hold the schedule back too
    project = make_project(tmp_path, NO_DRIFT, {**FAST, "canary": {"mode": "none"}})
    schedule = project.defs.resolve_schedule_def("weekly_retrain_schedule")

    def evaluate():
        context = dg.build_schedule_context(instance=instance)
        return schedule.evaluate_tick(context)

    assert "no production batch" in evaluate().skip_message
    loop = Loop(project, instance)
    loop.settle(DRIFT_SENSORS)  # bootstrap is decided on 2023-12-31; batches up to day 8
    [request] = evaluate().run_requests
    assert request.tags["retrain/reason"] == "schedule"
    assert request.tags["retrain/data_day"] == _day(8)
    assert "9 data days >= 7" in request.tags["retrain/evidence"]
    run_requests(project, instance, [request], default_job="retrain_job")
    assert "0 data days before" in evaluate().skip_message


def test_weekly_schedule_holds_back_while_a_challenger_awaits_its_canary(
    tmp_path: Path, instance
) -> None:
    project = make_project(
        tmp_path,
        NO_DRIFT,
        {**FAST, "schedule": {"max_days_between_retrains": 1}, "gates": {"auc_ratio": 0.5}},
    )
    schedule = project.defs.resolve_schedule_def("weekly_retrain_schedule")

    def evaluate():
        return schedule.evaluate_tick(dg.build_schedule_context(instance=instance))

    project.hold_back()
    loop = Loop(project, instance)
    loop.settle(("landing_sensor", "bootstrap_sensor"))  # v1, decided on the day before day 0
    project.land_until(_day(0))
    loop.settle(("landing_sensor",))  # the newest production batch is day 0
    # No challenger: the last retraining is 1 data day old, >= 1: the schedule would retrain.
    [request] = evaluate().run_requests
    assert request.tags["retrain/reason"] == "schedule"
    assert request.tags["retrain/data_day"] == _day(0)

    # A manual retraining (no data day: the age above does not change) leaves a gated
    # challenger waiting for its canary (shadow mode): now the schedule holds back.
    retrain = project.defs.resolve_job_def("retrain_job").execute_in_process(
        instance=instance, tags={"retrain/reason": "manual"}, raise_on_error=False
    )
    assert retrain.success
    candidate = retrain.asset_materializations_for_node("candidate_model")[0].metadata
    assert candidate["challenger"].value is True and candidate["model_version"].value == "2"
    held = evaluate()
    assert not held.run_requests
    assert held.skip_message == "challenger v2 is still in its canary"
