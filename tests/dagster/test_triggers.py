"""The retraining triggers against a real instance with real materialisations: drift must be
debounced (one drifted batch is not enough), rate-limited (cooldown) and explained (reason and
evidence tags); a retraining that predates a change does not hold its answer back; switched-off
triggers report but never retrain. The longer ones (seasonal wobble, concept drift, the weekly
schedule) are in test_triggers_long.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd

from tests.conftest import FAST, SMALL, START, Loop, make_project, tick

NO_DRIFT = dataclasses.replace(SMALL, drift="none", days=9)
DRIFT_SENSORS = ("landing_sensor", "bootstrap_sensor", "drift_sensor")


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _shift(path: Path) -> None:
    """Rewrite a landed batch as a clearly drifted one (several columns, +1.5 sd)."""
    frame = pd.read_parquet(path)
    for col in ("car_value", "annual_income", "debt_to_income_ratio", "credit_score"):
        frame[col] = frame[col] + 1.5 * frame[col].std()
    frame["salary_range"] = ">100k"
    frame.to_parquet(path, index=False)


def _drift_reports(instance) -> dict[str, bool]:
    key = dg.AssetKey("drift_report")
    out = {}
    for record in instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key), 1000
    ).records:
        event = record.asset_materialization
        out[event.partition] = event.metadata["drifted"].value
    return out


def test_drift_is_debounced_explained_and_cooled_down(tmp_path: Path, instance) -> None:
    project = make_project(
        tmp_path, NO_DRIFT, {**FAST, "drift": {**FAST["drift"], "cooldown_days": 3}}
    )
    features = project.landing / "features"
    for i in (2, 5, 6, 7):  # one drifted batch alone, then three in a row
        _shift(features / f"{_day(i)}.parquet")
    loop = Loop(project, instance)
    loop.settle(DRIFT_SENSORS)

    verdicts = _drift_reports(instance)
    assert {d for d, drifted in verdicts.items() if drifted} == {_day(i) for i in (2, 5, 6, 7)}
    reasons = [r.dagster_run.tags["retrain/reason"] for r in loop.retrains()]
    assert reasons == ["bootstrap", "drift"]  # day 2 alone: debounced; day 7: cooldown
    tags = loop.retrains()[1].dagster_run.tags
    assert tags["retrain/data_day"] == _day(6)
    assert "2 drifted batches in a row" in tags["retrain/evidence"]
    assert "psi(" in tags["retrain/evidence"] or "ks(" in tags["retrain/evidence"]
    assert "(vs training set of champion v1)" in tags["retrain/evidence"]  # what it compared to
    assert tags["retrain/regime_start"] == _day(5)  # where the streak, the new regime, began
    assert all(r.success for r in loop.retrains())


def test_no_drift_no_retrain_and_the_check_passes(tmp_path: Path, instance) -> None:
    project = make_project(tmp_path, NO_DRIFT)
    loop = Loop(project, instance)
    loop.settle(DRIFT_SENSORS)
    assert [r.dagster_run.tags["retrain/reason"] for r in loop.retrains()] == ["bootstrap"]
    assert len(_drift_reports(instance)) == 9 and not any(_drift_reports(instance).values())
    key = dg.AssetCheckKey(dg.AssetKey("drift_report"), "drift_report_within_threshold")
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
    assert len(history) == 9
    assert all(r.event.dagster_event.event_specific_data.passed for r in history)


def test_abrupt_drift_is_detected_within_two_batches(tmp_path: Path, instance) -> None:
    spec = dataclasses.replace(SMALL, drift="abrupt", days=8, drift_day=3)
    project = make_project(tmp_path, spec, {**FAST, "drift": {**FAST["drift"], "cooldown_days": 1}})
    loop = Loop(project, instance)
    loop.settle(DRIFT_SENSORS)
    verdicts = _drift_reports(instance)
    assert not any(verdicts[_day(i)] for i in range(3))
    assert verdicts[_day(3)] and verdicts[_day(4)]
    drift_runs = [r for r in loop.retrains() if r.dagster_run.tags["retrain/reason"] == "drift"]
    assert drift_runs and drift_runs[0].dagster_run.tags["retrain/data_day"] <= _day(4)
    # The failed check warns in the UI (severity WARN) with the evidence as its description.
    key = dg.AssetCheckKey(dg.AssetKey("drift_report"), "drift_report_within_threshold")
    failed = [
        r.event.dagster_event.event_specific_data
        for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
        if not r.event.dagster_event.event_specific_data.passed
    ]
    assert failed and all(e.severity == dg.AssetCheckSeverity.WARN for e in failed)


def test_a_retraining_before_the_shift_does_not_cool_down_the_response(
    tmp_path: Path, instance
) -> None:
    # The bootstrap champion is decided on 2023-12-31; the shift begins on day 2 (2024-01-03), 3
    # data days later, well within the 7-day cooldown. That retraining could not have answered a
    # shift that had not begun, so the drift retraining comes on the second drifted batch.
    project = make_project(
        tmp_path, NO_DRIFT, {**FAST, "drift": {**FAST["drift"], "cooldown_days": 7}}
    )
    features = project.landing / "features"
    for i in range(2, 9):
        _shift(features / f"{_day(i)}.parquet")
    loop = Loop(project, instance)
    loop.settle(DRIFT_SENSORS)
    retrains = loop.retrains()
    assert [r.dagster_run.tags["retrain/reason"] for r in retrains] == ["bootstrap", "drift"]
    tags = retrains[1].dagster_run.tags
    assert tags["retrain/data_day"] == _day(3)  # detection delay: 2 batches
    assert tags["retrain/regime_start"] == _day(2)
    # The shift goes on, but it began before that retraining: its cooldown holds the rest.
    assert all(r.success for r in retrains)


def _report(instance, asset: str, day: str, **metadata) -> None:
    """A verdict as the monitoring asset would record it (no run needed for a trigger test)."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset, partition=day, metadata=metadata)
    )


def test_switched_off_soft_triggers_report_but_never_retrain(tmp_path: Path, instance) -> None:
    project = make_project(
        tmp_path, NO_DRIFT, {**FAST, "drift": {**FAST["drift"], "retrain": False}}
    )
    for i in (1, 2):
        _report(instance, "drift_report", _day(i), drifted=True, evidence="psi(x)=0.9")
    off = tick(project, instance, "drift_sensor")
    assert not off.run_requests
    assert off.skip_message == f"drift on {_day(2)} held back: drift.retrain is false"
    # The same verdicts with the trigger on: a drift retraining.
    on = tick(make_project(tmp_path / "on", NO_DRIFT), instance, "drift_sensor")
    assert [r.tags["retrain/reason"] for r in on.run_requests] == ["drift"]


def test_switched_off_performance_trigger_names_its_key(tmp_path: Path, instance) -> None:
    project = make_project(tmp_path, NO_DRIFT, {**FAST, "performance": {"retrain": False}})
    _report(instance, "performance_report", _day(3), degraded=True, reason="auc 0.51 < 0.80")
    off = tick(project, instance, "performance_sensor")
    assert not off.run_requests
    assert off.skip_message == f"degradation on {_day(3)} held back: performance.retrain is false"
    on = tick(make_project(tmp_path / "on", NO_DRIFT), instance, "performance_sensor")
    assert [r.tags["retrain/reason"] for r in on.run_requests] == ["performance"]


def _retraining_decided(instance, day: str, reason: str = "schedule") -> None:
    """A finished retrain_job run decided on `day`, as last_retrain_day reads it."""
    from dagster._core.storage.dagster_run import DagsterRun

    run = DagsterRun(
        job_name="retrain_job",
        run_id=f"decided-{day}-{reason}",
        status=dg.DagsterRunStatus.SUCCESS,
        tags={"retrain/reason": reason, "retrain/data_day": day},
    )
    instance.add_run(run)


def _challenger_decided(instance, day: str, version: str = "5") -> None:
    """A gated challenger from a retraining decided on `day`, still waiting for its canary."""

    @dg.asset(name="candidate_model")
    def candidate():
        return dg.Output(None, metadata={"challenger": True, "model_version": version})

    assert dg.materialize([candidate], instance=instance, tags={"retrain/data_day": day}).success


def _drift_days(instance, days: list[int]) -> None:
    for i in days:
        _report(instance, "drift_report", _day(i), drifted=True, evidence="psi(x)=0.9")


def test_a_retraining_decided_on_the_first_drifted_day_does_not_hold_drift_back(
    tmp_path: Path,
) -> None:
    # A weekly retraining decided on the very day the shift began learnt from labelled rows
    # from before it: neither its cooldown nor its challenger's canary delays the answer.
    project = make_project(tmp_path, NO_DRIFT)
    with dg.instance_for_test() as instance:
        _retraining_decided(instance, _day(1))
        _challenger_decided(instance, _day(1))
        _drift_days(instance, [1, 2])
        [request] = tick(project, instance, "drift_sensor").run_requests
        assert request.tags["retrain/data_day"] == _day(2)
        assert request.tags["retrain/regime_start"] == _day(1)
    # Decided a day into the shift, the same challenger is waited for: it saw the new regime.
    with dg.instance_for_test() as instance:
        _challenger_decided(instance, _day(2))
        _drift_days(instance, [1, 2, 3])
        held = tick(project, instance, "drift_sensor")
        assert not held.run_requests
        assert f"drift on {_day(3)} held back: challenger v5 is still in its canary" in (
            held.skip_message
        )
    # And its cooldown holds: decided after the first drifted day.
    with dg.instance_for_test() as instance:
        _retraining_decided(instance, _day(2))
        _drift_days(instance, [1, 2, 3])
        held = tick(project, instance, "drift_sensor")
        assert not held.run_requests
        assert "cooldown after the retraining of " + _day(2) in held.skip_message


def test_a_settled_shift_is_named_in_the_quiet_tick(tmp_path: Path, instance) -> None:
    # After a drift retraining the batches are judged against the new regime: the quiet tick
    # says which batch it judged last, and against what.
    project = make_project(tmp_path, NO_DRIFT)
    regime = "production batches 2024-01-03..2024-01-06 (regime since 2024-01-03)"
    _report(instance, "drift_report", _day(7), drifted=False, evidence="", reference=regime)
    quiet = tick(project, instance, "drift_sensor")
    assert quiet.skip_message == (
        f"no retrain-worthy drift in new drift reports (newest: {_day(7)}, vs {regime})"
    )


def test_a_drift_retraining_on_the_first_drifted_day_is_the_answer(tmp_path: Path) -> None:
    # With a debounce of one batch, drift retrains on the shift's first day; the next drifted
    # day is the same shift, so that retraining's cooldown holds (only a schedule, bootstrap or
    # manual retraining on the first day predates the shift).
    project = make_project(
        tmp_path, NO_DRIFT, {**FAST, "drift": {**FAST["drift"], "consecutive": 1}}
    )
    with dg.instance_for_test() as instance:
        _drift_days(instance, [1, 2])
        requests = tick(project, instance, "drift_sensor").run_requests
        assert [r.run_key for r in requests] == [f"drift@{_day(1)}"]
    with dg.instance_for_test() as instance:
        _retraining_decided(instance, _day(1), reason="drift")
        _challenger_decided(instance, _day(1))
        _drift_days(instance, [1, 2])
        held = tick(project, instance, "drift_sensor")
        assert not held.run_requests
        assert f"cooldown after the retraining of {_day(1)}" in held.skip_message


def test_degradation_is_not_held_back_by_a_retraining_before_it_began(tmp_path: Path) -> None:
    # Labels show a concept change from label day 3 on; a scheduled retraining decided on day 3
    # (and its challenger) learnt from labels before it: neither holds the response back.
    project = make_project(tmp_path, NO_DRIFT)
    with dg.instance_for_test() as instance:
        _retraining_decided(instance, _day(3))
        _challenger_decided(instance, _day(3))
        _report(instance, "performance_report", _day(2), degraded=False)
        for i in (3, 4):
            _report(instance, "performance_report", _day(i), degraded=True, reason="auc low")
        requests = tick(project, instance, "performance_sensor").run_requests
        assert [r.run_key for r in requests] == [f"performance@{_day(4)}"]
    # A drift retraining before the labels showed it answered the same shift: its cooldown holds.
    with dg.instance_for_test() as instance:
        _retraining_decided(instance, _day(2), reason="drift")
        for i in (3, 4):
            _report(instance, "performance_report", _day(i), degraded=True, reason="auc low")
        held = tick(project, instance, "performance_sensor")
        assert not held.run_requests
        assert f"cooldown after the retraining of {_day(2)}" in held.skip_message
    # A retraining decided a day into the degradation is its answer: cooldown and canary hold.
    with dg.instance_for_test() as instance:
        _retraining_decided(instance, _day(4), reason="performance")
        _challenger_decided(instance, _day(4))
        for i in (3, 4, 5):
            _report(instance, "performance_report", _day(i), degraded=True, reason="auc low")
        held = tick(project, instance, "performance_sensor")
        assert not held.run_requests
        assert f"degradation on {_day(5)} held back: within the 3-day cooldown" in held.skip_message


def test_the_canary_judges_only_the_challenger_still_waiting(tmp_path: Path) -> None:
    # v5 (a scheduled retraining) reached its shadow rows, but a soft trigger replaced it with
    # v6 meanwhile: no canary for v5 (it would judge v6, which has no shadow rows yet).
    project = make_project(tmp_path, NO_DRIFT, {**FAST, "canary": {"min_rows": 500}})
    shadow = {"challenger_version": "5", "challenger_labelled_rows": 300}
    with dg.instance_for_test() as instance:
        _challenger_decided(instance, _day(3), version="5")
        _report(instance, "performance_report", _day(4), **shadow)
        _report(instance, "performance_report", _day(5), **shadow)
        [request] = tick(project, instance, "canary_sensor").run_requests
        assert request.run_key == "canary@v5"
    with dg.instance_for_test() as instance:
        _challenger_decided(instance, _day(3), version="5")
        _report(instance, "performance_report", _day(4), **shadow)
        _challenger_decided(instance, _day(5), version="6")
        _report(instance, "performance_report", _day(5), **shadow)
        held = tick(project, instance, "canary_sensor")
        assert not held.run_requests
        assert held.skip_message == "v5 reached 600 shadow rows but v6 replaced it"
