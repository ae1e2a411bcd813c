"""What starts a retraining: the first champion (bootstrap), the soft triggers (drift,
performance or concept drift) and the hard fallback (the weekly schedule).

All of them reason in data time, not the wall clock: cooldowns and streaks count partition days,
so a replay of history behaves as live. Sensors read new materialisations after their cursor,
never the whole history. A soft trigger holds back within its cooldown and while a challenger is
in its canary (a new retraining would replace it before it was ever judged).
"""

import json
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.dates import days_between, shift_day
from retrain_assets.records import (
    challenger_in_shadow,
    last_retrain,
    last_retrain_day,
    new_materializations,
    predates,
)

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )

KEEP_DAYS = 60  # drift verdicts kept in the cursor: enough for any streak, bounded in size


def retrain_request(
    key: str, reason: str, evidence: str, day: str, regime_start: str | None = None
) -> dg.RunRequest:
    tags = {names.REASON_TAG: reason, names.EVIDENCE_TAG: evidence[:1000], names.DATA_DAY_TAG: day}
    if regime_start is not None:
        tags[names.REGIME_START_TAG] = regime_start
    return dg.RunRequest(run_key=key, job_name=names.RETRAIN_JOB, tags=tags)


def held_back(
    day: str,
    last: tuple[str, str] | None,
    cooldown: int,
    shadow: str | None,
    off: str | None = None,
    since: str | None = None,
) -> str | None:
    """Why a soft trigger must not retrain on `day` (None when it may): the trigger is switched
    off (`off` names the key), within the cooldown of the last retraining (`last`: its data day
    and reason; at most one per data day), or a challenger still in its canary.

    `since` is where the change behind the trigger began: a retraining that `predates` it could
    not have answered it, so its cooldown does not hold this one back."""
    if off is not None:
        return f"{off} is false"
    if last is not None:
        decided, reason = last
        if decided >= day:
            return f"a retraining was already decided on {decided}"
        waived = since is not None and predates(decided, reason, since)
        if not waived and days_between(decided, day) < max(cooldown, 1):
            return f"within the {cooldown}-day cooldown after the retraining of {decided}"
    if shadow is not None:
        return f"challenger v{shadow} is still in its canary"
    return None


def _holds(
    context: dg.SensorEvaluationContext,
    what: str,
    decision: tuple[str, tuple[str, str] | None, int, str | None, str],
    held: list[str],
) -> bool:
    """Whether a soft trigger holds back `what`; the reason is appended to `held` and logged.
    `decision` is (day, last retraining, cooldown, switched-off key, where the change began)."""
    day, last, cooldown, off, since = decision
    shadow = challenger_in_shadow(context.instance, decided_after=since)
    why = held_back(day, last, cooldown, shadow, off, since)
    if why:
        held.append(f"{what} held back: {why}")
        context.log.info(held[-1])
    return why is not None


def evaluate_bootstrap(context: dg.SensorEvaluationContext, day_before_start: str):
    instance = context.instance
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(names.REFERENCE_DATASET)), limit=1
    ).records
    if not latest:
        return dg.SkipReason("the reference set has not been ingested yet")
    if instance.get_latest_materialization_event(dg.AssetKey(names.PROMOTED_MODEL)) is not None:
        return dg.SkipReason("a champion exists")
    storage_id = latest[0].storage_id
    return retrain_request(
        f"bootstrap@{storage_id}",
        "bootstrap",
        f"no champion; reference_dataset materialised (storage id {storage_id})",
        day_before_start,
    )


def run_start(flags: dict[str, bool], day: str) -> str:
    """The first day of the unbroken run of flagged days (drifted, degraded) that ends on `day`."""
    start = day
    for earlier in sorted((d for d in flags if d <= day), reverse=True):
        if not flags[earlier]:
            break
        start = earlier
    return start


def evaluate_drift(
    context: dg.SensorEvaluationContext, need: int, cooldown: int, enabled: bool = True
):
    """Retrain after `need` drifted batches in a row; the cursor keeps recent verdicts by day."""
    state = json.loads(context.cursor) if context.cursor else {"after": None, "days": {}}
    days: dict[str, list] = state["days"]
    requests: list[dg.RunRequest] = []
    held: list[str] = []
    last = last_retrain(context.instance)
    newest: tuple[str, str] | None = None
    for storage_id, day, meta in new_materializations(
        context.instance, names.DRIFT_REPORT, state["after"]
    ):
        state["after"] = storage_id
        if day is None:
            continue
        days[day] = [bool(meta.get("drifted")), str(meta.get("evidence", ""))]
        newest = (day, str(meta.get("reference") or "an unnamed reference"))
        streak = sorted(d for d in days if d <= day)[-need:]
        if len(streak) < need or not all(days[d][0] for d in streak):
            continue
        since = run_start({d: v[0] for d, v in days.items()}, day)
        off = None if enabled else "drift.retrain"
        if _holds(context, f"drift on {day}", (day, last, cooldown, off, since), held):
            continue
        run = sum(1 for d in days if since <= d <= day)
        evidence = f"{days[day][1]} on {day}; {run} drifted batches in a row ({since}..{day})"
        requests.append(retrain_request(f"drift@{day}", "drift", evidence, day, since))
        last = (day, "drift")
    state["days"] = {d: days[d] for d in sorted(days)[-KEEP_DAYS:]}
    context.update_cursor(json.dumps(state))
    quiet = "no retrain-worthy drift in new drift reports"
    if newest is not None:  # a settled shift shows here: its batches match the regime reference
        quiet += f" (newest: {newest[0]}, vs {newest[1]})"
    return requests or dg.SkipReason("; ".join(held) or quiet)


def performance_reference(meta: dict) -> str:
    """What a performance verdict judged: the champion, on which label days, against what."""
    pooled = [d for d in str(meta.get("pooled_days") or "").split(", ") if d]
    window = f"{min(pooled)}..{max(pooled)}" if len(pooled) > 1 else (pooled or ["none"])[0]
    return (
        f"champion v{meta.get('champion_version', '?')} on the labels of {window}, against its"
        f" test AUC {_auc(meta.get('baseline_auc'))}"
    )


def _auc(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and value == value else "unknown"


def evaluate_performance(context: dg.SensorEvaluationContext, cooldown: int, enabled: bool = True):
    """Retrain on a degraded live AUC (reason performance) or concept drift (reason concept); the
    cursor keeps recent verdicts by label day, to know where a run of bad verdicts began."""
    state = _performance_state(context.cursor)
    days: dict[str, bool] = state["days"]
    requests: list[dg.RunRequest] = []
    held: list[str] = []
    last = last_retrain(context.instance)
    for storage_id, day, meta in new_materializations(
        context.instance, names.PERFORMANCE_REPORT, state["after"]
    ):
        state["after"] = storage_id
        if day is None:
            continue
        days[day] = bool(meta.get("degraded") or meta.get("concept_drift"))
        if not days[day]:
            continue
        since = run_start(days, day)
        off = None if enabled else "performance.retrain"
        if _holds(context, f"degradation on {day}", (day, last, cooldown, off, since), held):
            continue
        reason = "concept" if meta.get("concept_drift") else "performance"
        evidence = f"{meta.get('reason', '')} on {day} ({performance_reference(meta)})"
        requests.append(retrain_request(f"{reason}@{day}", reason, evidence, day))
        last = (day, reason)
    state["days"] = {d: days[d] for d in sorted(days)[-KEEP_DAYS:]}
    context.update_cursor(json.dumps(state))
    return requests or dg.SkipReason("; ".join(held) or "no degradation in new performance reports")


def _performance_state(cursor: str | None) -> dict:
    """The performance sensor's cursor: the last storage id read and recent verdicts by day (a
    bare storage id is the cursor of earlier releases)."""
    if not cursor:
        return {"after": None, "days": {}}
    loaded = json.loads(cursor)
    return loaded if isinstance(loaded, dict) else {"after": int(loaded), "days": {}}


def evaluate_schedule(context: dg.ScheduleEvaluationContext, limit: int):
    """Retrain when the last retraining is `limit` or more data days before the newest batch."""
    instance = context.instance
    newest = instance.get_latest_materialization_event(dg.AssetKey(names.FEATURE_BATCH))
    if newest is None or newest.asset_materialization is None:
        return dg.SkipReason("no production batch ingested yet")
    today = newest.asset_materialization.partition
    if today is None:
        return dg.SkipReason("the newest feature batch has no partition")
    shadow = challenger_in_shadow(instance)
    if shadow is not None:
        return dg.SkipReason(f"challenger v{shadow} is still in its canary")
    last = last_retrain_day(instance)
    age = days_between(last, today) if last else None
    if age is not None and age < limit:
        return dg.SkipReason(f"last retraining on {last}, {age} data days before {today}")
    evidence = f"last retraining {last or 'never'}; {age} data days >= {limit} on {today}"
    return dg.RunRequest(
        run_key=f"schedule@{today}",
        tags={
            names.REASON_TAG: "schedule",
            names.EVIDENCE_TAG: evidence,
            names.DATA_DAY_TAG: today,
        },
    )


def build_triggers(
    cfg: RetrainConfig, retrain_job: "AssetJob"
) -> tuple[list[dg.SensorDefinition], list[dg.ScheduleDefinition]]:
    need, drift_cooldown = cfg.drift.consecutive, cfg.drift.cooldown_days
    perf_cooldown = cfg.performance.cooldown_days
    limit = cfg.schedule.max_days_between_retrains
    day_before_start = shift_day(cfg.data.start_date.isoformat(), -1)

    @dg.sensor(
        name=names.BOOTSTRAP_SENSOR,
        minimum_interval_seconds=cfg.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=retrain_job,
        description="With no champion yet, train the first one as soon as the reference landed.",
    )
    def bootstrap_sensor(context: dg.SensorEvaluationContext):
        return evaluate_bootstrap(context, day_before_start)

    @dg.sensor(
        name=names.DRIFT_SENSOR,
        minimum_interval_seconds=cfg.drift.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=retrain_job,
        description=f"Retrain after {need} drifted batches in a row, at most once per "
        f"{drift_cooldown} data days.",
    )
    def drift_sensor(context: dg.SensorEvaluationContext):
        return evaluate_drift(context, need, drift_cooldown, cfg.drift.retrain)

    @dg.sensor(
        name=names.PERFORMANCE_SENSOR,
        minimum_interval_seconds=cfg.performance.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=retrain_job,
        description="Retrain when live performance degraded or concept drift was detected "
        f"(at most one retraining per data day, {perf_cooldown} data days apart).",
    )
    def performance_sensor(context: dg.SensorEvaluationContext):
        return evaluate_performance(context, perf_cooldown, cfg.performance.retrain)

    @dg.schedule(
        name=names.WEEKLY_SCHEDULE,
        cron_schedule=cfg.schedule.cron,
        job=retrain_job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if cfg.schedule.enabled
        else dg.DefaultScheduleStatus.STOPPED,
        description=f"Retrain when the last retraining is {limit} or more data days old.",
    )
    def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext):
        return evaluate_schedule(context, limit)

    return [bootstrap_sensor, drift_sensor, performance_sensor], [weekly_retrain_schedule]
