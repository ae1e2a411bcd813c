"""Alerts: a webhook message (Slack-compatible JSON, lib/alerts.py) when something a person should
hear about happens to a model. One sensor per model, `alerts_sensor` (`<model>_alerts_sensor` in
a fleet), defined only when `alerts.webhook_url_env` names a variable.

Events, read from the Dagster instance after the sensor's cursor (never the whole history):

- retraining_started: a run of the model's retrain_job started with a soft reason (drift,
  performance, concept, estimated performance): its reason, evidence and data day. Bootstrap,
  schedule and manual retrainings are not alerted.
- gate_failed: a run of the model failed because a blocking gate failed (data gate, metric gate,
  latency gate, canary), or was tagged `retrain/gates=failed`: the failed checks and why. It is
  a decision, so it is not also a run_failure.
- promotion / rollback: a `promoted_model` materialisation whose decision is promote / rollback:
  the old and new versions and the reason.
- run_failure: any other failed run of the model (its jobs, or a UI run of its assets only): the
  job, the failed step and its error.

Guarantees. The webhook URL is read from the environment at delivery time; it is in no config,
cursor, log or tick message (with the variable unset, a tick warns naming the variable and sends
nothing). A delivery is retried with exponential backoff, then logged (redacted) and dropped: the
cursor moves past it, so a dead receiver causes no retry storm, and no pipeline run waits on or
depends on an alert. After a failed delivery the tick stops sending and the alerts after it wait
for the next tick; a tick sends for at most SEND_BUDGET_SECONDS (Dagster gives a sensor 60 s).
The first tick starts at the instance's newest event: switching alerts on replays no history.
In a fleet each model's sensor reads only its own runs (tag `retrain/model`, its job names) and
its own asset keys.
"""

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib import alerts as lib
from retrain_assets.records import GATE_FAILED, PAGE
from retrain_assets.scope import Scope

PAGES_PER_TICK = 10
"""Pages of PAGE events read per stream and tick; the rest is read on the next tick."""
SEND_BUDGET_SECONDS = 40.0
"""A tick stops sending after this long (Dagster's sensor evaluation times out after 60 s)."""
STREAMS = ("started", "failed", "promoted")
"""The cursor's streams: run starts, run failures, promoted_model materialisations."""
DECISIONS = {"promote": lib.PROMOTION, "rollback": lib.ROLLBACK}
PROMOTION_FIELDS = (
    "auc_difference_on_test",
    "auc_difference_live",
    "loss_difference_live",
    "metric_on_test",
    "champion_metric_on_test",
    "mlflow_model",
)
"""promoted_model metadata carried into a promotion alert when present."""


@dataclass(frozen=True)
class Found:
    """An alert read from the instance, at its event's storage id."""

    storage_id: int
    event: lib.AlertEvent


class ModelWatch:
    """What belongs to one model: its runs, jobs, gates and asset keys."""

    def __init__(self, cfg: RetrainConfig) -> None:
        self.scope = scope = Scope.of(cfg)
        self.model = cfg.fleet_model or cfg.model.registered_name
        self.ui_url = cfg.alerts.dagster_ui_url
        jobs = (names.INGEST_JOB, names.REFERENCE_JOB, names.RETRAIN_JOB)
        self.jobs = {scope.name(job) for job in (*jobs, names.CANARY_JOB, names.ROLLBACK_JOB)}
        self.retrain_job = scope.name(names.RETRAIN_JOB)
        self.gates = {
            dg.AssetCheckKey(scope.key(names.TRAINING_DATASET), names.DATA_GATE),
            dg.AssetCheckKey(scope.key(names.CANDIDATE_MODEL), names.model_gate_check(cfg.task)),
            dg.AssetCheckKey(scope.key(names.CANDIDATE_MODEL), names.LATENCY_GATE),
            dg.AssetCheckKey(scope.key(names.CANARY_EVALUATION), names.CANARY_CHECK),
        }

    def owns_key(self, key: dg.AssetKey) -> bool:
        if self.scope.model is None:
            return len(key.path) == 1
        return len(key.path) == 2 and key.path[0] == self.scope.model

    def may_own(self, job_name: str | None) -> bool:
        """Whether a run of this job may be the model's (an anonymous job: maybe)."""
        return job_name in self.jobs or (job_name or "").startswith("__")

    def owns(self, run: dg.DagsterRun, instance: dg.DagsterInstance) -> bool:
        """A run of the model: tagged with it (every run of a fleet model's jobs is; a single
        model's runs carry no model tag), one of its jobs, or a run of only its assets (a UI
        launch of selected assets has no tag)."""
        tag = run.tags.get(names.MODEL_TAG)
        if tag is not None:
            return tag == self.scope.model
        if run.job_name in self.jobs:
            return True
        keys = set(run.asset_selection or ())
        keys |= {check.asset_key for check in run.asset_check_selection or ()}
        keys = keys or planned_keys(instance, run.run_id)
        return bool(keys) and all(self.owns_key(key) for key in keys)

    def link(self, run_id: str | None) -> str | None:
        if not (self.ui_url and run_id):
            return None
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def alert(
        self, kind: str, title: str, fields: Mapping[str, object], run_id: str | None
    ) -> lib.AlertEvent:
        kept = {k: str(v) for k, v in fields.items() if v not in (None, "")}
        return lib.AlertEvent(kind, self.model, title, kept, run_id or None, self.link(run_id))


def planned_keys(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run planned to materialise (a run without an asset selection)."""
    planned = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    events = instance.all_logs(run_id, of_type=planned)
    return {
        e.dagster_event.asset_key for e in events if e.dagster_event and e.dagster_event.asset_key
    }


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _root_error(error) -> str:
    """The message of a serialised error's innermost cause: the user's exception, under
    Dagster's wrapper (the alert's text clips it)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return (getattr(error, "message", "") or "").strip()


def failure_text(entry: dg.EventLogEntry) -> tuple[str | None, str]:
    """(failed step, error) of a RUN_FAILURE event, from the event alone."""
    data = entry.dagster_event.event_specific_data if entry.dagster_event else None
    first = getattr(data, "first_step_failure_event", None)
    if first is not None and first.step_failure_data is not None:
        return first.step_key, _root_error(first.step_failure_data.error)
    if getattr(data, "error", None) is not None:
        return None, _root_error(data.error)  # type: ignore[union-attr]
    return None, (entry.dagster_event.message if entry.dagster_event else "") or ""


def failed_gates(instance: dg.DagsterInstance, watch: ModelWatch, run_id: str) -> dict[str, str]:
    """The model's gates that failed in a run: check name -> why."""
    failed: dict[str, str] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation) or evaluation.passed:
            continue
        if evaluation.asset_check_key in watch.gates:
            reason = evaluation.metadata.get("reason")
            why = evaluation.description or (str(reason.value) if reason is not None else "")
            failed[evaluation.check_name] = why
    return failed


def started_alert(
    instance: dg.DagsterInstance, watch: ModelWatch, record: dg.EventLogRecord
) -> lib.AlertEvent | None:
    """A soft-triggered retraining that started."""
    entry = record.event_log_entry
    if entry.job_name != watch.retrain_job:
        return None
    run = instance.get_run_by_id(entry.run_id)
    reason = run.tags.get(names.REASON_TAG) if run is not None else None
    if run is None or not watch.owns(run, instance) or reason not in names.SOFT_REASONS:
        return None
    fields = {
        "reason": reason,
        "evidence": run.tags.get(names.EVIDENCE_TAG),
        "data_day": run.tags.get(names.DATA_DAY_TAG),
        "job": run.job_name,
        "at": _when(entry.timestamp),
    }
    return watch.alert(lib.RETRAINING_STARTED, f"Retraining started ({reason})", fields, run.run_id)


def failed_alert(
    instance: dg.DagsterInstance, watch: ModelWatch, record: dg.EventLogRecord
) -> lib.AlertEvent | None:
    """A failed run of the model: a gate's decision, or a failure."""
    entry = record.event_log_entry
    if not watch.may_own(entry.job_name):
        return None
    run = instance.get_run_by_id(entry.run_id)
    if run is None or not watch.owns(run, instance):
        return None
    common: dict[str, object] = {"job": run.job_name, "reason": run.tags.get(names.REASON_TAG)}
    common |= {"data_day": run.tags.get(names.DATA_DAY_TAG), "at": _when(entry.timestamp)}
    gates = failed_gates(instance, watch, run.run_id)
    if gates or run.tags.get(names.GATES_TAG) == GATE_FAILED:
        checks = ", ".join(gates) or "a gate"
        gated: dict[str, object] = {"failed_gates": checks}
        gated |= {f"why ({check})": why for check, why in gates.items()}
        return watch.alert(lib.GATE_FAILED, f"Gate failed: {checks}", gated | common, run.run_id)
    step, error = failure_text(entry)
    failure = common | {"step": step, "error": error}
    return watch.alert(lib.RUN_FAILURE, f"Run failed: {run.job_name}", failure, run.run_id)


def promoted_alert(
    instance: dg.DagsterInstance, watch: ModelWatch, record: dg.EventLogRecord
) -> lib.AlertEvent | None:
    """A promotion or a rollback, from promoted_model's metadata."""
    event = record.asset_materialization
    meta = {k: v.value for k, v in event.metadata.items()} if event is not None else {}
    kind = DECISIONS.get(str(meta.get("decision")))
    if kind is None:
        return None  # keep or drop: the champion did not move
    old, new = meta.get("old_version", "none"), meta.get("new_version", "none")
    fields = {"old_version": old, "new_version": new, "reason": meta.get("reason")}
    was = f"was v{old}" if old != "none" else "the first champion"
    if kind == lib.ROLLBACK:
        fields["requested_by"] = meta.get("requested_by")
        title = f"Rolled back: champion v{new} ({was})"
    else:
        fields |= {key: meta.get(key) for key in PROMOTION_FIELDS}
        title = f"Promoted: champion v{new} ({was})"
    fields["at"] = _when(record.timestamp)
    return watch.alert(kind, title, fields, record.run_id)


def _pages(
    fetch: Callable[[int], dg.EventRecordsResult], after: int
) -> Iterator[dg.EventLogRecord]:
    """Records after a storage id, oldest first, at most PAGES_PER_TICK pages."""
    for _ in range(PAGES_PER_TICK):
        page = fetch(after)
        yield from page.records
        if page.records:
            after = page.records[-1].storage_id
        if not page.has_more:
            return


def stream_records(
    instance: dg.DagsterInstance, watch: ModelWatch, stream: str, after: int
) -> Iterator[dg.EventLogRecord]:
    if stream == "promoted":
        key = watch.scope.key(names.PROMOTED_MODEL)
        return _pages(
            lambda a: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=a), PAGE, ascending=True
            ),
            after,
        )
    if stream == "started":
        starts = dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_START)
        return _pages(lambda a: _run_events(instance, starts, a), after)
    failures = dg.RunStatusChangeRecordsFilter(dg.DagsterEventType.RUN_FAILURE)
    return _pages(lambda a: _run_events(instance, failures, a), after)


def _run_events(
    instance: dg.DagsterInstance, kind: dg.RunStatusChangeRecordsFilter, after: int
) -> dg.EventRecordsResult:
    return instance.fetch_run_status_changes(
        kind._replace(after_storage_id=after), PAGE, ascending=True
    )


READERS = {"started": started_alert, "failed": failed_alert, "promoted": promoted_alert}


def read_alerts(
    instance: dg.DagsterInstance, watch: ModelWatch, cursor: dict[str, int], log
) -> tuple[list[Found], dict[str, list[int]]]:
    """The model's alerts after the cursor, oldest first, and every storage id read per stream
    (alerts or not). A record that cannot be read is logged and passed over."""
    found: list[Found] = []
    read: dict[str, list[int]] = {}
    for stream in STREAMS:
        read[stream] = []
        for record in stream_records(instance, watch, stream, cursor[stream]):
            read[stream].append(record.storage_id)
            try:
                event = READERS[stream](instance, watch, record)
            except Exception as exc:  # one odd record must not stop the alerts for good
                log.warning(f"alerts: event {record.storage_id} not read: {exc!r}")
                continue
            if event is not None:
                found.append(Found(record.storage_id, event))
    return sorted(found, key=lambda f: f.storage_id), read


def advance(cursor: dict[str, int], read: dict[str, list[int]], stop: int | None) -> dict[str, int]:
    """Each stream's cursor past what was read, except the alerts from `stop` on (not sent)."""
    return {
        stream: max([cursor[stream], *(i for i in read[stream] if stop is None or i < stop)])
        for stream in STREAMS
    }


@dataclass
class Sending:
    """What a tick's deliveries came to: kinds sent, failures (redacted), where it stopped."""

    sent: list[str]
    failed: list[str]
    stop: int | None = None


def send(alerts: list[Found], url: str, cfg: RetrainConfig, log) -> Sending:
    """Deliver in order; after a failed delivery, or once the time budget is spent, the rest
    wait for the next tick."""
    settings = cfg.alerts
    deadline = time.monotonic() + SEND_BUDGET_SECONDS
    outcome = Sending([], [])
    for found in alerts:
        if outcome.failed or time.monotonic() >= deadline:
            outcome.stop = found.storage_id
            break
        result = lib.deliver(
            url,
            lib.format_message(found.event),
            retries=settings.retries,
            delay=settings.retry_delay_seconds,
            timeout=settings.timeout_seconds,
            deadline=deadline,
        )
        if result.delivered:
            outcome.sent.append(found.event.kind)
            continue
        message = (
            f"alerts: {found.event.kind} alert ({found.event.title}) not delivered to the "
            f"webhook in ${settings.webhook_url_env} after {result.attempts} attempt(s): "
            f"{result.error}"
        )
        log.warning(message)
        outcome.failed.append(message)
    return outcome


def parse_cursor(cursor: str | None) -> dict[str, int] | None:
    """The stored cursor (a stream it lacks starts where the others are); None if unreadable."""
    try:
        stored = {str(k): int(v) for k, v in json.loads(cursor or "").items()}
    except (ValueError, TypeError, AttributeError):
        return None
    if not stored:
        return None
    return {stream: stored.get(stream, max(stored.values())) for stream in STREAMS}


def newest_event(instance: dg.DagsterInstance, watch: ModelWatch) -> int:
    """The instance's newest event storage id (a storage that cannot say: the newest of the
    streams' events)."""
    try:
        return instance.event_log_storage.get_maximum_record_id() or 0
    except NotImplementedError:  # only non-sharded SQL storages answer
        newest = [
            *instance.fetch_run_status_changes(dg.DagsterEventType.RUN_START, 1).records,
            *instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, 1).records,
            *instance.fetch_materializations(watch.scope.key(names.PROMOTED_MODEL), 1).records,
        ]
        return max((record.storage_id for record in newest), default=0)


def load_cursor(
    instance: dg.DagsterInstance, watch: ModelWatch, cursor: str | None
) -> tuple[dict[str, int], bool]:
    """(the cursor, whether it is new): a new one (no cursor, or one that cannot be read)
    starts at the instance's newest event."""
    stored = parse_cursor(cursor)
    if stored is not None:
        return stored, False
    return dict.fromkeys(STREAMS, newest_event(instance, watch)), True


def summary(alerts: list[Found], outcome: Sending) -> str:
    if not alerts:
        return "no new events"
    text = f"sent {len(outcome.sent)} of {len(alerts)} alert(s)"
    if outcome.sent:
        text += f" ({', '.join(outcome.sent)})"
    if outcome.failed:
        text += "; " + "; ".join(outcome.failed)
    if outcome.stop is not None:
        text += "; the rest wait for the next tick"
    return text


def evaluate_alerts(context: dg.SensorEvaluationContext, cfg: RetrainConfig) -> dg.SkipReason:
    """One tick: read the model's new events, send the configured ones, move the cursor."""
    settings, watch = cfg.alerts, ModelWatch(cfg)
    cursor, new = load_cursor(context.instance, watch, context.cursor)
    if new:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"alerts start at event {cursor[STREAMS[0]]}: no history is replayed")
    found, read = read_alerts(context.instance, watch, cursor, context.log)
    alerts = [f for f in found if f.event.kind in settings.events]
    url = os.environ.get(settings.webhook_url_env or "", "").strip()
    if alerts and not url:
        kinds = ", ".join(f.event.kind for f in alerts)
        message = f"alerts: ${settings.webhook_url_env} is not set; not sent: {kinds}"
        context.log.warning(message)
        context.update_cursor(json.dumps(advance(cursor, read, None)))
        return dg.SkipReason(message)
    outcome = send(alerts, url, cfg, context.log) if alerts else Sending([], [])
    context.update_cursor(json.dumps(advance(cursor, read, outcome.stop)))
    return dg.SkipReason(summary(alerts, outcome))


def build_alert_defs(cfg: RetrainConfig) -> dg.Definitions:
    """The model's alerts sensor; empty Definitions when `alerts.webhook_url_env` is not set."""
    if cfg.alerts.webhook_url_env is None:
        return dg.Definitions()
    scope = Scope.of(cfg)

    @dg.sensor(
        name=scope.name(names.ALERTS_SENSOR),
        minimum_interval_seconds=cfg.alerts.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Webhook alerts (URL in ${cfg.alerts.webhook_url_env}) on: "
        f"{', '.join(cfg.alerts.events) or 'nothing'}.",
    )
    def alerts_sensor(context: dg.SensorEvaluationContext):
        return evaluate_alerts(context, cfg)

    return dg.Definitions(sensors=[alerts_sensor])
