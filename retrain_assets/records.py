"""What sensors, schedules and reports read from the Dagster instance, in data time: new
materialisations since a cursor (never the whole history), the last retraining's data day, and
whether a challenger is still in its canary.
"""

from collections.abc import Iterable, Iterator

import dagster as dg

from retrain_assets import names
from retrain_assets.scope import SINGLE, Scope

PAGE = 100
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
LIVE_STATUSES = [*IN_FLIGHT, dg.DagsterRunStatus.SUCCESS]
"""Runs that count as a retraining for cooldowns: queued, running or succeeded (and failed runs
tagged as stopped by a gate)."""


def new_materializations(
    instance: dg.DagsterInstance, asset: dg.AssetKey | str, after: int | None
) -> Iterator[tuple[int, str | None, dict]]:
    """(storage id, partition, metadata values) of materialisations after a storage id, oldest
    first, read page by page."""
    cursor = after
    key = asset if isinstance(asset, dg.AssetKey) else dg.AssetKey(asset)
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor),
            limit=PAGE,
            ascending=True,
        )
        for record in page.records:
            event = record.asset_materialization
            if event is None:
                continue
            metadata = {k: v.value for k, v in event.metadata.items()}
            yield record.storage_id, event.partition, metadata
            cursor = record.storage_id
        if not page.has_more:
            return


def last_retrain_day(instance: dg.DagsterInstance, scope: Scope = SINGLE) -> str | None:
    """The newest data day of a retraining run that is queued, running or succeeded, or that a
    gate stopped (its candidate was judged and rejected: retrying the next day would judge
    nearly the same rows again). A run that failed any other way does not count."""
    last = last_retrain(instance, scope)
    return last[0] if last else None


def last_retrain(instance: dg.DagsterInstance, scope: Scope = SINGLE) -> tuple[str, str] | None:
    """(data day, reason) of the newest retraining that counts (see `last_retrain_day`); of
    several on that day, a soft-triggered one (it answered a change)."""
    job = scope.name(names.RETRAIN_JOB)
    live = dg.RunsFilter(job_name=job, statuses=LIVE_STATUSES)
    gated = dg.RunsFilter(
        job_name=job,
        statuses=[dg.DagsterRunStatus.FAILURE],
        tags={names.GATES_TAG: GATE_FAILED},
    )
    records = [
        *instance.get_run_records(filters=live, limit=20),
        *instance.get_run_records(filters=gated, limit=20),
    ]
    decided = [
        (tags[names.DATA_DAY_TAG], tags.get(names.REASON_TAG, "manual"))
        for tags in (r.dagster_run.tags for r in records)
        if tags.get(names.DATA_DAY_TAG)
    ]
    return max(decided, key=lambda d: (d[0], d[1] in names.SOFT_REASONS), default=None)


def predates(day: str, reason: str, since: str) -> bool:
    """Whether a retraining decided on `day` for `reason` could not have answered a change that
    began on `since`: the schedule, the bootstrap or a person decided it on or before the
    change's first day (its labelled rows predate the change). A soft-triggered retraining always
    counts: it may have answered this very change seen earlier by another trigger (drift sees a
    shift days before the labels show the degradation it causes)."""
    return reason not in names.SOFT_REASONS and day <= since


GATE_FAILED = "failed"


def tag_failed_gates(
    context: dg.AssetExecutionContext, items: Iterable[dg.Output | dg.AssetCheckResult]
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Pass an asset's outputs through; tag the run `retrain/gates=failed` when a gate (a check of
    ERROR severity) fails; a WARN check, such as the calibration check, is not a gate."""
    for item in items:
        if (
            isinstance(item, dg.AssetCheckResult)
            and not item.passed
            and item.severity == dg.AssetCheckSeverity.ERROR
        ):
            context.instance.add_run_tags(context.run_id, {names.GATES_TAG: GATE_FAILED})
        yield item


def newest_gated_version(instance: dg.DagsterInstance, scope: Scope = SINGLE) -> str | None:
    """The version of the newest candidate that passed its gates (the `challenger` alias went to
    it), whether or not its canary has run; a candidate that failed a gate moves no alias."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=scope.key(names.CANDIDATE_MODEL)), limit=PAGE
    ).records
    for record in records:  # newest first
        meta = record.asset_materialization.metadata if record.asset_materialization else {}
        if meta.get("challenger") and meta["challenger"].value and "model_version" in meta:
            return str(meta["model_version"].value)
    return None


def challenger_in_shadow(
    instance: dg.DagsterInstance, decided_after: str | None = None, scope: Scope = SINGLE
) -> str | None:
    """The version of a gated challenger still waiting for its canary, if any.

    While one is in shadow, soft triggers and the schedule wait: a new retraining would replace it
    before it ever collected enough labelled rows to be judged. With `decided_after` (the first
    day of a change a trigger answers), a challenger whose retraining `predates` the change does
    not count: it was trained before the change and cannot answer it."""
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=scope.key(names.CANDIDATE_MODEL)), limit=1
    ).records
    if not latest or latest[0].asset_materialization is None:
        return None
    meta = latest[0].asset_materialization.metadata
    if not (meta.get("challenger") and meta["challenger"].value):
        return None
    if decided_after is not None:
        run = instance.get_run_by_id(latest[0].run_id)
        tags = run.tags if run is not None else {}
        day = tags.get(names.DATA_DAY_TAG)
        if day is not None and predates(day, tags.get(names.REASON_TAG, "manual"), decided_after):
            return None
    version = str(meta["model_version"].value)
    judged = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=scope.key(names.CANARY_EVALUATION), after_storage_id=latest[0].storage_id
        ),
        limit=PAGE,
    ).records
    for record in judged:  # a canary verdict ends the shadow (a failed one drops the challenger)
        event = record.asset_materialization
        judged_version = event.metadata.get("challenger_version") if event else None
        if judged_version is not None and str(judged_version.value) == version:
            return None
    decided = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=scope.key(names.PROMOTED_MODEL), after_storage_id=latest[0].storage_id
        ),
        limit=PAGE,
    ).records
    for record in decided:
        event = record.asset_materialization
        decision = event.metadata.get("decision") if event else None
        if decision is not None and decision.value in ("promote", "drop", "rollback"):
            return None
    return version
