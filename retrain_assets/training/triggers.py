"""What starts a retraining: the first champion (bootstrap), the soft triggers (drift,
performance, concept drift, or a drop of the performance estimated before labels) and the hard
fallback (the weekly schedule).

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
from retrain_assets.scope import SINGLE, Scope

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )

KEEP_DAYS = 60  # drift verdicts kept in the cursor: enough for any streak, bounded in size


def retrain_request(
    scope: Scope, key: str, reason: str, evidence: str, day: str, regime_start: str | None = None
) -> dg.RunRequest:
    tags = {names.REASON_TAG: reason, names.EVIDENCE_TAG: evidence[:1000], names.DATA_DAY_TAG: day}
    if regime_start is not None:
        tags[names.REGIME_START_TAG] = regime_start
    return dg.RunRequest(run_key=key, job_name=scope.name(names.RETRAIN_JOB), tags=tags)


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
    scope: Scope,
) -> bool:
    """Whether a soft trigger holds back `what`; the reason is appended to `held` and logged.
    `decision` is (day, last retraining, cooldown, switched-off key, where the change began)."""
    day, last, cooldown, off, since = decision
    shadow = challenger_in_shadow(context.instance, decided_after=since, scope=scope)
    why = held_back(day, last, cooldown, shadow, off, since)
    if why:
        held.append(f"{what} held back: {why}")
        context.log.info(held[-1])
    return why is not None


def evaluate_bootstrap(
    context: dg.SensorEvaluationContext, day_before_start: str, scope: Scope = SINGLE
):
    instance = context.instance
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=scope.key(names.REFERENCE_DATASET)), limit=1
    ).records
    if not latest:
        return dg.SkipReason("the reference set has not been ingested yet")
    if instance.get_latest_materialization_event(scope.key(names.PROMOTED_MODEL)) is not None:
        return dg.SkipReason("a champion exists")
    storage_id = latest[0].storage_id
    return retrain_request(
        scope,
        f"bootstrap@{storage_id}",
        "bootstrap",
        f"no champion; reference_dataset materialised (storage id {storage_id})",
        day_before_start,
    )


def streak_complete(days: dict[str, list], day: str, need: int) -> bool:
    """Whether the newest `need` verdicts up to `day` (each [flagged, evidence]) are all flagged."""
    streak = sorted(d for d in days if d <= day)[-need:]
    return len(streak) == need and all(days[d][0] for d in streak)


def run_start(flags: dict[str, bool], day: str) -> str:
    """The first day of the unbroken run of flagged days (drifted, degraded) that ends on `day`."""
    start = day
    for earlier in sorted((d for d in flags if d <= day), reverse=True):
        if not flags[earlier]:
            break
        start = earlier
    return start


class _DriftDecider:
    """One drift_sensor tick: the verdicts by day (kept in the cursor) and, with
    ``drift.require_impact``, the estimated impact by day; a retraining is decided for a day once
    both of what it needs are known, whichever arrived last."""

    def __init__(
        self,
        context: dg.SensorEvaluationContext,
        settings: tuple[int, int, bool, bool],
        scope: Scope,
    ):
        self.context = context
        self.scope = scope
        self.need, self.cooldown, self.enabled, self.require_impact = settings
        state = json.loads(context.cursor) if context.cursor else {}
        self.state = {"after": None, "days": {}, "impact_after": None, "impact": {}, **state}
        self.days: dict[str, list] = self.state["days"]
        self.impact: dict[str, list] = self.state["impact"]
        self.last = last_retrain(context.instance, scope)
        self.requests: list[dg.RunRequest] = []
        self.held: list[str] = []

    def decide(self, day: str) -> None:
        if not streak_complete(self.days, day, self.need):
            return
        if self.require_impact and day not in self.impact:
            self.held.append(f"drift on {day} waits for estimated_performance[{day}]")
            return
        since = run_start({d: v[0] for d, v in self.days.items()}, day)
        off = None if self.enabled else "drift.retrain"
        decision = (day, self.last, self.cooldown, off, since)
        if _holds(self.context, f"drift on {day}", decision, self.held, self.scope):
            return
        impact = ""
        if self.require_impact:
            fell, why = self.impact[day]
            if not fell:
                self.held.append(f"drift on {day} held back (drift.require_impact): {why}")
                self.context.log.info(self.held[-1])
                return
            impact = f"; impact: {why}"
        run = sum(1 for d in self.days if since <= d <= day)
        evidence = (
            f"{self.days[day][1]} on {day}; {run} drifted batches in a row ({since}..{day}){impact}"
        )
        request = retrain_request(self.scope, f"drift@{day}", "drift", evidence, day, since)
        self.requests.append(request)
        self.last = (day, "drift")

    def read_estimates(self) -> None:
        """New estimated_performance verdicts; a drift verdict that waited for one is decided."""
        for storage_id, day, meta in new_materializations(
            self.context.instance,
            self.scope.key(names.ESTIMATED_PERFORMANCE),
            self.state["impact_after"],
        ):
            self.state["impact_after"] = storage_id
            if day is None or day in self.impact:
                continue
            self.impact[day] = [bool(meta.get("fell")), str(meta.get("reason", ""))]
            if day in self.days:
                self.decide(day)

    def cursor(self) -> str:
        for key in ("days", "impact"):
            kept = self.state[key]
            self.state[key] = {d: kept[d] for d in sorted(kept)[-KEEP_DAYS:]}
        return json.dumps(self.state)


def evaluate_drift(
    context: dg.SensorEvaluationContext,
    need: int,
    cooldown: int,
    enabled: bool = True,
    require_impact: bool = False,
    scope: Scope = SINGLE,
):
    """Retrain after `need` drifted batches in a row (and, with `require_impact`, when the
    newest one's estimated AUC fell); the cursor keeps recent verdicts by day."""
    tick = _DriftDecider(context, (need, cooldown, enabled, require_impact), scope)
    newest: tuple[str, str] | None = None
    for storage_id, day, meta in new_materializations(
        context.instance, scope.key(names.DRIFT_REPORT), tick.state["after"]
    ):
        tick.state["after"] = storage_id
        if day is None:
            continue
        tick.days[day] = [bool(meta.get("drifted")), str(meta.get("evidence", ""))]
        newest = (day, str(meta.get("reference") or "an unnamed reference"))
        tick.decide(day)
    if require_impact:
        tick.read_estimates()
    context.update_cursor(tick.cursor())
    quiet = "no retrain-worthy drift in new drift reports"
    if newest is not None:  # a settled shift shows here: its batches match the regime reference
        quiet += f" (newest: {newest[0]}, vs {newest[1]})"
    return tick.requests or dg.SkipReason("; ".join(tick.held) or quiet)


def performance_reference(meta: dict) -> str:
    """What a performance verdict judged: the champion, on which label days, against what."""
    pooled = [d for d in str(meta.get("pooled_days") or "").split(", ") if d]
    window = f"{min(pooled)}..{max(pooled)}" if len(pooled) > 1 else (pooled or ["none"])[0]
    metric = str(meta.get("metric") or "roc_auc")
    baseline = meta.get("baseline_auc") if metric == "roc_auc" else meta.get("baseline_metric")
    return (
        f"champion v{meta.get('champion_version', '?')} on the labels of {window}, against its"
        f" test {'AUC' if metric == 'roc_auc' else metric} {_auc(baseline)}"
    )


def _auc(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) and value == value else "unknown"


def _label_verdicts(
    context: dg.SensorEvaluationContext,
    state: dict,
    settings: tuple[int, bool],
    out: tuple[list[dg.RunRequest], list[str]],
    last: tuple[str, str] | None,
    scope: Scope,
) -> tuple[str, str] | None:
    """Requests for new degraded or concept-drift performance reports; the last retraining."""
    cooldown, enabled = settings
    requests, held = out
    days: dict[str, bool] = state["days"]
    for storage_id, day, meta in new_materializations(
        context.instance, scope.key(names.PERFORMANCE_REPORT), state["after"]
    ):
        state["after"] = storage_id
        if day is None:
            continue
        days[day] = bool(meta.get("degraded") or meta.get("concept_drift"))
        if not days[day]:
            continue
        since = run_start(days, day)
        off = None if enabled else "performance.retrain"
        decision = (day, last, cooldown, off, since)
        if _holds(context, f"degradation on {day}", decision, held, scope):
            continue
        reason = "concept" if meta.get("concept_drift") else "performance"
        evidence = f"{meta.get('reason', '')} on {day} ({performance_reference(meta)})"
        requests.append(retrain_request(scope, f"{reason}@{day}", reason, evidence, day))
        last = (day, reason)
    return last


def _estimated_verdicts(
    context: dg.SensorEvaluationContext,
    state: dict,
    settings: tuple[int, int, bool],
    out: tuple[list[dg.RunRequest], list[str]],
    last: tuple[str, str] | None,
    scope: Scope,
) -> None:
    """Requests for `need` estimated-degraded batches in a row (reason estimated_performance)."""
    need, cooldown, enabled = settings
    requests, held = out
    days: dict[str, list] = state["estimated"]
    for storage_id, day, meta in new_materializations(
        context.instance, scope.key(names.ESTIMATED_PERFORMANCE), state["estimated_after"]
    ):
        state["estimated_after"] = storage_id
        if day is None:
            continue
        days[day] = [bool(meta.get("degraded")), str(meta.get("reason", ""))]
        if not streak_complete(days, day, need):
            continue
        since = run_start({d: v[0] for d, v in days.items()}, day)
        off = None if enabled else "estimation.retrain"
        what = f"estimated degradation on {day}"
        if _holds(context, what, (day, last, cooldown, off, since), held, scope):
            continue
        run = sum(1 for d in days if since <= d <= day)
        evidence = (
            f"{days[day][1]} on {day} (champion v{meta.get('champion_version', '?')}, before "
            f"its labels); {run} estimated-degraded batches in a row ({since}..{day})"
        )
        reason = names.ESTIMATED_REASON
        requests.append(retrain_request(scope, f"{reason}@{day}", reason, evidence, day))
        last = (day, reason)


def evaluate_performance(
    context: dg.SensorEvaluationContext,
    cooldown: int,
    enabled: bool = True,
    estimated: tuple[int, bool] | None = None,
    scope: Scope = SINGLE,
):
    """Retrain on a degraded live AUC (reason performance) or concept drift (reason concept),
    and, with `estimated` = (batches in a row, switched on), on a significant drop of the
    estimated AUC before labels (reason estimated_performance). The cursor keeps recent verdicts
    by day, to know where a run of bad verdicts began."""
    state = _performance_state(context.cursor)
    out: tuple[list[dg.RunRequest], list[str]] = ([], [])
    last = last_retrain(context.instance, scope)
    last = _label_verdicts(context, state, (cooldown, enabled), out, last, scope)
    if estimated is not None:
        need, on = estimated
        _estimated_verdicts(context, state, (need, cooldown, on), out, last, scope)
    for key in ("days", "estimated"):
        state[key] = {d: state[key][d] for d in sorted(state[key])[-KEEP_DAYS:]}
    context.update_cursor(json.dumps(state))
    requests, held = out
    return requests or dg.SkipReason(
        "; ".join(held) or "no degradation in new performance reports or estimates"
    )


def _performance_state(cursor: str | None) -> dict:
    """The performance sensor's cursor: the last storage id read and recent verdicts by day, for
    the label-based and the estimated verdicts (a bare storage id is the cursor of earlier
    releases)."""
    fresh: dict = {"after": None, "days": {}, "estimated_after": None, "estimated": {}}
    if not cursor:
        return fresh
    loaded = json.loads(cursor)
    return {**fresh, **loaded} if isinstance(loaded, dict) else {**fresh, "after": int(loaded)}


def evaluate_schedule(context: dg.ScheduleEvaluationContext, limit: int, scope: Scope = SINGLE):
    """Retrain when the last retraining is `limit` or more data days before the newest batch."""
    instance = context.instance
    newest = instance.get_latest_materialization_event(scope.key(names.FEATURE_BATCH))
    if newest is None or newest.asset_materialization is None:
        return dg.SkipReason("no production batch ingested yet")
    today = newest.asset_materialization.partition
    if today is None:
        return dg.SkipReason("the newest feature batch has no partition")
    shadow = challenger_in_shadow(instance, scope=scope)
    if shadow is not None:
        return dg.SkipReason(f"challenger v{shadow} is still in its canary")
    last = last_retrain_day(instance, scope)
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
    day_before_start = shift_day(cfg.data.start_date.isoformat(), -1)
    scope = Scope.of(cfg)

    @dg.sensor(
        name=scope.name(names.BOOTSTRAP_SENSOR),
        minimum_interval_seconds=cfg.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=retrain_job,
        description="With no champion yet, train the first one as soon as the reference landed.",
    )
    def bootstrap_sensor(context: dg.SensorEvaluationContext):
        return evaluate_bootstrap(context, day_before_start, scope)

    @dg.sensor(
        name=scope.name(names.DRIFT_SENSOR),
        minimum_interval_seconds=cfg.drift.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=retrain_job,
        description=f"Retrain after {need} drifted batches in a row, at most once per "
        f"{drift_cooldown} data days.",
    )
    def drift_sensor(context: dg.SensorEvaluationContext):
        return evaluate_drift(
            context, need, drift_cooldown, cfg.drift.retrain, cfg.drift.require_impact, scope
        )

    @dg.sensor(
        name=scope.name(names.PERFORMANCE_SENSOR),
        minimum_interval_seconds=cfg.performance.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=retrain_job,
        description="Retrain when live performance degraded or concept drift was detected, "
        f"or the estimated AUC fell significantly for {cfg.estimation.consecutive} batches in a "
        f"row before labels (at most one retraining per data day, {perf_cooldown} data days "
        "apart).",
    )
    def performance_sensor(context: dg.SensorEvaluationContext):
        estimated = (cfg.estimation.consecutive, cfg.estimation.retrain)
        return evaluate_performance(
            context, perf_cooldown, cfg.performance.retrain, estimated, scope
        )

    return [bootstrap_sensor, drift_sensor, performance_sensor], [build_schedule(cfg, retrain_job)]


def build_schedule(cfg: RetrainConfig, retrain_job: "AssetJob") -> dg.ScheduleDefinition:
    """The hard fallback: weekly_retrain_schedule."""
    limit = cfg.schedule.max_days_between_retrains
    scope = Scope.of(cfg)

    @dg.schedule(
        name=scope.name(names.WEEKLY_SCHEDULE),
        cron_schedule=cfg.schedule.cron,
        job=retrain_job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if cfg.schedule.enabled
        else dg.DefaultScheduleStatus.STOPPED,
        description=f"Retrain when the last retraining is {limit} or more data days old.",
    )
    def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext):
        return evaluate_schedule(context, limit, scope)

    return weekly_retrain_schedule
