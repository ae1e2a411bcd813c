"""Alerts through real Dagster: one simulated loop (bootstrap, a failed run, a drift retraining
with promotion, a rollback, a failed gate) with the model's alerts sensor ticked after each step,
posting to a real HTTP receiver on 127.0.0.1; each outcome is pinned by its own test.

The sensor reports a soft-triggered retraining (not the bootstrap), a promotion, a rollback, a
failed gate (only as a gate, not also as a failed run) and a failed run, each once: a tick after
them sends nothing new. A receiver that answers 500 costs a tick its retries, never an exception
or a pipeline run, and the URL shows in no log or tick message. In a fleet, one model's sensor
never reports another model's events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from retrain_assets import names
from retrain_assets.alerts import STREAMS, ModelWatch, build_alert_defs, load_cursor
from retrain_assets.config import AlertsConfig, with_fleet_model
from retrain_assets.definitions import build_definitions
from retrain_assets.names import ALERTS_SENSOR
from retrain_assets.run_config import rollback_run_config
from tests.conftest import SMALL, Loop, Project, make_project, tick
from tests.dagster.test_graph_snapshot import SNAPSHOT, describe
from tests.unit.test_alerts import SECRET, Receiver

ENV = "TEST_WEBHOOK"
SPEC = dataclasses.replace(SMALL, drift="abrupt", days=5, drift_day=2)
BOOT = ("landing_sensor", "bootstrap_sensor")
DRIFT = (*BOOT, "drift_sensor")
OVERRIDES = {
    # canary none: a retraining promotes at once; any candidate passes the AUC gate.
    "canary": {"mode": "none"},
    "gates": {"auc_ratio": 0.5},
    "alerts": {"webhook_url_env": ENV, "retries": 2, "retry_delay_seconds": 0.01},
}


@dataclasses.dataclass
class Step:
    """One alerts tick: its skip message, what the receiver got, what the tick logged."""

    message: str
    payloads: list[dict]
    log: str
    requests: int


@dataclasses.dataclass
class Scenario:
    project: Project
    instance: dg.DagsterInstance
    loop: Loop
    receiver: Receiver
    url: str
    steps: dict[str, Step]
    runs: dict[str, dg.ExecuteInProcessResult]


class Alerts:
    """Ticks the alerts sensor as the daemon would, keeping its cursor between ticks."""

    def __init__(self, project: Project, instance: dg.DagsterInstance, receiver: Receiver):
        self.project, self.instance, self.receiver = project, instance, receiver
        self.cursor: str | None = None

    def tick(self) -> Step:
        seen = len(self.receiver.requests)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):  # the tick's log (Dagster's console logger)
            result = tick(self.project, self.instance, ALERTS_SENSOR, self.cursor)
        assert not result.run_requests
        self.cursor = result.cursor or self.cursor
        new = self.receiver.requests[seen:]
        return Step(result.skip_message or "", [r["json"] for r in new], err.getvalue(), len(new))


def _rollback(project: Project, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return project.defs.resolve_job_def(names.ROLLBACK_JOB).execute_in_process(
        instance=instance,
        run_config=rollback_run_config("planted regression", "tester"),
        tags={names.REASON_TAG: "rollback"},
        raise_on_error=False,
    )


def _gated_retrain(project: Project, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """A manual retraining whose data gate fails (it demands a million rows)."""
    cfg = project.cfg
    strict = cfg.model_copy(update={"gates": cfg.gates.model_copy(update={"min_rows": 10**6})})
    return (
        build_definitions(strict)
        .resolve_job_def(names.RETRAIN_JOB)
        .execute_in_process(
            instance=instance, tags={names.REASON_TAG: "manual"}, raise_on_error=False
        )
    )


def _run_scenario(project: Project, instance: dg.DagsterInstance, receiver: Receiver) -> Scenario:
    alerts, loop = Alerts(project, instance, receiver), Loop(project, instance)
    steps, runs = {}, {}
    steps["first"] = alerts.tick()  # the cursor starts here
    project.hold_back()
    loop.settle(BOOT)
    steps["bootstrap"] = alerts.tick()
    runs["failed_rollback"] = _rollback(project, instance)  # v1 has no previous champion
    steps["run_failure"] = alerts.tick()
    project.land_until("2099-01-01")
    loop.settle(DRIFT)
    steps["drift"] = alerts.tick()
    runs["rollback"] = _rollback(project, instance)
    steps["rollback"] = alerts.tick()
    runs["gated"] = _gated_retrain(project, instance)
    steps["gate"] = alerts.tick()
    steps["quiet"] = alerts.tick()
    receiver.default = 500  # the receiver breaks: two alerts to send
    runs["gated_again"] = _gated_retrain(project, instance)
    runs["gated_third"] = _gated_retrain(project, instance)
    steps["broken"] = alerts.tick()
    receiver.default = 200
    steps["recovered"] = alerts.tick()
    return Scenario(project, instance, loop, receiver, "", steps, runs)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    project = make_project(tmp_path_factory.mktemp("alerts"), SPEC, OVERRIDES)
    project = Project(project.root, project.cfg, project.defs)
    with (
        Receiver() as receiver,
        pytest.MonkeyPatch.context() as env,
        dg.instance_for_test() as instance,
    ):
        url = receiver.url()
        env.setenv(ENV, url)
        done = _run_scenario(project, instance, receiver)
        yield dataclasses.replace(done, url=url)


def _kinds(step: Step) -> list[str]:
    return [p["kind"] for p in step.payloads]


def test_the_first_tick_starts_from_now_and_sends_nothing(scenario: Scenario) -> None:
    first = scenario.steps["first"]
    assert first.payloads == [] and "no history is replayed" in first.message


def test_the_bootstrap_is_a_promotion_but_not_a_retraining_alert(scenario: Scenario) -> None:
    [promotion] = scenario.steps["bootstrap"].payloads
    assert promotion["kind"] == "promotion" and promotion["model"] == "car_loan"
    assert promotion["fields"]["old_version"] == "none"
    assert promotion["fields"]["new_version"] == "1"
    assert promotion["title"] == "Promoted: champion v1 (the first champion)"
    assert promotion["text"].startswith("*[car_loan] Promoted: champion v1 (the first champion)*")


def test_a_failed_run_is_alerted_with_its_job_run_id_and_error(scenario: Scenario) -> None:
    run = scenario.runs["failed_rollback"]
    assert not run.success
    [failure] = scenario.steps["run_failure"].payloads
    assert failure["kind"] == "run_failure" and failure["run_id"] == run.run_id
    fields = failure["fields"]
    assert fields["job"] == names.ROLLBACK_JOB and fields["reason"] == "rollback"
    assert "champion v1 records no previous champion" in fields["error"]
    assert fields["step"] == "promoted_model"
    assert f"run: {run.run_id}" in failure["text"]


def test_a_drift_retraining_is_announced_when_it_starts_and_its_promotion(
    scenario: Scenario,
) -> None:
    retrains = scenario.loop.retrains()
    soft = [r for r in retrains if r.dagster_run.tags[names.REASON_TAG] in names.SOFT_REASONS]
    assert soft and soft[0].dagster_run.tags[names.REASON_TAG] == "drift"
    payloads = scenario.steps["drift"].payloads
    started = [p for p in payloads if p["kind"] == "retraining_started"]
    assert [p["run_id"] for p in started] == [r.run_id for r in soft]  # one each, in order
    first = started[0]
    assert first["title"] == "Retraining started (drift)"
    assert first["fields"]["reason"] == "drift"
    assert first["fields"]["evidence"] == soft[0].dagster_run.tags[names.EVIDENCE_TAG]
    assert first["fields"]["data_day"] == soft[0].dagster_run.tags[names.DATA_DAY_TAG]
    promotions = [p for p in payloads if p["kind"] == "promotion"]
    assert [p["run_id"] for p in promotions] == [r.run_id for r in soft]  # canary none
    assert promotions[0]["fields"]["old_version"] == "1"
    assert promotions[0]["fields"]["new_version"] == "2"
    assert set(_kinds(scenario.steps["drift"])) == {"retraining_started", "promotion"}


def test_a_rollback_is_alerted_with_the_versions_reason_and_who(scenario: Scenario) -> None:
    run = scenario.runs["rollback"]
    assert run.success
    [rollback] = scenario.steps["rollback"].payloads
    assert rollback["kind"] == "rollback" and rollback["run_id"] == run.run_id
    fields = rollback["fields"]
    assert fields["reason"] == "planted regression" and fields["requested_by"] == "tester"
    assert int(fields["new_version"]) == int(fields["old_version"]) - 1


def test_a_failed_gate_is_alerted_as_a_gate_only(scenario: Scenario) -> None:
    run = scenario.runs["gated"]
    assert not run.success and run.dagster_run.tags[names.GATES_TAG] == "failed"
    [gate] = scenario.steps["gate"].payloads  # not also a run_failure
    assert gate["kind"] == "gate_failed" and gate["run_id"] == run.run_id
    assert gate["title"] == f"Gate failed: {names.DATA_GATE}"
    assert gate["fields"]["failed_gates"] == names.DATA_GATE
    assert "1000000" in gate["fields"][f"why ({names.DATA_GATE})"]
    assert gate["fields"]["job"] == names.RETRAIN_JOB


def test_a_tick_with_nothing_new_sends_nothing(scenario: Scenario) -> None:
    quiet = scenario.steps["quiet"]
    assert quiet.requests == 0 and quiet.message == "no new events"


def test_a_failing_receiver_costs_retries_then_a_redacted_log_and_the_rest_wait(
    scenario: Scenario,
) -> None:
    broken = scenario.steps["broken"]
    # the first alert: 1 + 2 retries, all answered 500; the second waits for the next tick
    assert broken.requests == 3 and {p["kind"] for p in broken.payloads} == {"gate_failed"}
    assert "not delivered" in broken.message and "HTTP 500" in broken.message
    assert "rest wait for the next tick" in broken.message
    assert "not delivered" in broken.log and f"${ENV}" in broken.log
    for text in (broken.message, broken.log):
        assert scenario.url not in text and SECRET not in text and "/hook/" not in text
    # the runs ended as they would have without alerts: stopped by their gate, nothing else
    for run in (scenario.runs["gated_again"], scenario.runs["gated_third"]):
        assert run.dagster_run.tags[names.GATES_TAG] == "failed"
        assert [e.check_name for e in run.get_asset_check_evaluations()] == [names.DATA_GATE]


def test_after_recovery_only_the_waiting_alert_is_sent(scenario: Scenario) -> None:
    recovered = scenario.steps["recovered"]
    [waiting] = recovered.payloads  # the failed one is dropped, not retried forever
    assert waiting["run_id"] == scenario.runs["gated_third"].run_id
    assert "sent 1 of 1" in recovered.message


def test_an_unset_variable_warns_naming_it_and_sends_nothing(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, instance = scenario.project, scenario.instance
    alerts = Alerts(project, instance, scenario.receiver)
    alerts.tick()  # starts from now
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            names.PROMOTED_MODEL,
            metadata={"decision": "promote", "old_version": "8", "new_version": "9"},
        )
    )
    monkeypatch.delenv(ENV)
    unset = alerts.tick()
    assert unset.requests == 0
    assert f"${ENV} is not set; not sent: promotion" in unset.message
    assert f"${ENV} is not set" in unset.log
    monkeypatch.setenv(ENV, scenario.url)
    assert alerts.tick().requests == 0  # the cursor moved on: no backlog when it is set again


def test_a_new_or_unreadable_cursor_starts_at_the_newest_event(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, watch = scenario.instance, ModelWatch(scenario.project.cfg)
    newest = instance.event_log_storage.get_maximum_record_id()
    assert load_cursor(instance, watch, None) == (dict.fromkeys(STREAMS, newest), True)
    assert load_cursor(instance, watch, "not json") == (dict.fromkeys(STREAMS, newest), True)
    assert load_cursor(instance, watch, '{"started": 5}') == (dict.fromkeys(STREAMS, 5), False)

    def unsupported(self) -> int:
        raise NotImplementedError  # a sharded storage

    monkeypatch.setattr(type(instance.event_log_storage), "get_maximum_record_id", unsupported)
    cursor, new = load_cursor(instance, watch, None)
    assert new and len(set(cursor.values())) == 1
    assert 0 < cursor["started"] <= newest  # the newest run start, failure or promotion


def test_alerts_off_define_nothing_and_leave_the_graph_alone(scenario: Scenario) -> None:
    cfg = scenario.project.cfg.model_copy(update={"alerts": AlertsConfig()})
    off = build_alert_defs(cfg)
    assert not off.sensors and not off.assets and not off.jobs
    merged = dg.Definitions.merge(build_definitions(cfg), off)
    assert describe(merged) == json.loads(SNAPSHOT.read_text())


# --- a fleet: model a's sensor never reports model b's events -----------------------------------


def _fleet_job(model: str, job: str, fail: bool, tags: dict[str, str]) -> dg.JobDefinition:
    @dg.op(name=f"{model}_step")
    def step() -> None:
        if fail:
            raise RuntimeError(f"{model} broke")

    @dg.job(name=f"{model}_{job}", tags={names.MODEL_TAG: model, **tags})
    def the_job() -> None:
        step()

    return the_job


def _failing_canary(model: str) -> dg.AssetsDefinition:
    key = dg.AssetKey([model, names.CANARY_EVALUATION])

    @dg.asset(
        key=key, check_specs=[dg.AssetCheckSpec(names.CANARY_CHECK, asset=key, blocking=True)]
    )
    def canary():
        yield dg.Output(None)
        yield dg.AssetCheckResult(passed=False, description=f"{model}'s challenger is worse")

    return canary


def _fleet_events(instance: dg.DagsterInstance, model: str) -> None:
    """For one model: a drift retraining that starts (and succeeds), a canary that fails its
    blocking check (launched as a UI launch of the asset would be: no model tag), an ingest
    run that fails, and a promotion, as its own definitions would record them."""
    drift = {names.REASON_TAG: "drift", names.EVIDENCE_TAG: f"{model} drifted"}
    _fleet_job(model, names.RETRAIN_JOB, False, drift).execute_in_process(instance=instance)
    dg.materialize([_failing_canary(model)], instance=instance, raise_on_error=False)
    _fleet_job(model, names.INGEST_JOB, True, {}).execute_in_process(
        instance=instance, raise_on_error=False
    )
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            [model, names.PROMOTED_MODEL],
            metadata={"decision": "promote", "old_version": "1", "new_version": "2"},
        )
    )


def test_in_a_fleet_each_model_hears_only_of_its_own_events(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = scenario.project.cfg
    defs = dg.Definitions.merge(*(build_alert_defs(with_fleet_model(cfg, m)) for m in "ab"))
    fleet = Project(tmp_path, cfg, defs)
    assert {s.name for s in defs.sensors or []} == {"a_alerts_sensor", "b_alerts_sensor"}
    with Receiver() as receiver, dg.instance_for_test() as instance:
        monkeypatch.setenv(ENV, receiver.url())
        cursors = {m: tick(fleet, instance, f"{m}_{ALERTS_SENSOR}").cursor for m in "ab"}
        _fleet_events(instance, "b")
        _fleet_events(instance, "a")
        got = {}
        for model in "ab":
            seen = len(receiver.requests)
            tick(fleet, instance, f"{model}_{ALERTS_SENSOR}", cursors[model])
            got[model] = [r["json"] for r in receiver.requests[seen:]]
    for model in "ab":
        kinds = [p["kind"] for p in got[model]]
        assert kinds == ["retraining_started", "gate_failed", "run_failure", "promotion"]
        assert {p["model"] for p in got[model]} == {model}
        started, gate, failure, _ = got[model]
        assert started["fields"]["evidence"] == f"{model} drifted"
        assert gate["fields"]["failed_gates"] == names.CANARY_CHECK
        assert gate["fields"][f"why ({names.CANARY_CHECK})"] == f"{model}'s challenger is worse"
        assert failure["fields"]["job"] == f"{model}_{names.INGEST_JOB}"
        assert f"{model} broke" in failure["fields"]["error"]
