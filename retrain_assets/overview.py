"""fleet_status: the fleet at a glance, one row per model (task, metric, champion and its age,
live and estimated metric against the test value, last drift, last retraining, challenger in
canary, and why a model needs attention), as a markdown table and a chart; refreshed by a
schedule and after every promotion or rollback. ``retrain-assets status`` prints the same rows.

Each model's facts are read cheaply: the newest record of each of its assets (never the whole
history), its retrain job's newest runs, and its champion in the MLflow registry
(:func:`collect_status`). The judging and drawing are plain Python (``lib/overview.py``).
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.fleet import STATE_DIR, BrokenModel, Fleet
from retrain_assets.lib.overview import (
    FAILED,
    GATES_FAILED,
    OK,
    ModelStatus,
    StatusRow,
    Thresholds,
    assess,
    config_error_text,
    counts,
    ordered,
    plot_status_png,
    status_table,
)
from retrain_assets.records import GATE_FAILED, IN_FLIGHT, challenger_in_shadow, last_retrain
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import Scope

# The overview's settings.

FLEET_STATUS_CRON = "*/15 * * * *"
"""How often the schedule refreshes fleet_status (wall clock)."""
SENSOR_INTERVAL_SECONDS = 30
STATUS_PNG = "fleet_status.png"
"""The chart's file, in the fleet's state folder (``<fleet folder>/.retrain/``)."""
STALE_FACTOR = 2
"""No retraining for more than this many times ``schedule.max_days_between_retrains`` data days
needs attention (the weekly schedule should have retrained long before)."""
PROMOTIONS_LOOKBACK = 20
"""promoted_model records searched (newest first) for the one that made the champion: canaries
that keep the champion materialise it too."""
MOVES = ("promote", "rollback")
"""promoted_model decisions that move the champion."""


def _values(record: Any) -> dict[str, Any]:
    event = record.asset_materialization
    return {k: v.value for k, v in event.metadata.items()} if event is not None else {}


def newest(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[Any, dict[str, Any]] | None:
    """The newest materialisation record of an asset and its metadata values, or None."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1)
    if not records.records:
        return None
    return records.records[0], _values(records.records[0])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def _flag(meta: dict[str, Any], key: str) -> bool | None:
    return bool(meta[key]) if meta.get(key) is not None else None


def report_facts(instance: dg.DagsterInstance, scope: Scope, task: str) -> dict[str, Any]:
    """The newest performance report, estimate (binary) and drift report, as ModelStatus
    fields."""
    facts: dict[str, Any] = {}
    found = newest(instance, scope.key(names.PERFORMANCE_REPORT))
    if found:
        record, meta = found
        live = meta.get("metric_value")  # an older binary report has only its auc
        facts["live_metric"] = _number(meta.get("auc") if live is None else live)
        facts["live_day"] = record.asset_materialization.partition
        facts["live_degraded"] = _flag(meta, "degraded")
    found = newest(instance, scope.key(names.ESTIMATED_PERFORMANCE)) if task == "binary" else None
    if found:
        record, meta = found
        facts["estimated_metric"] = _number(meta.get("estimated_auc"))
        facts["estimated_day"] = record.asset_materialization.partition
        facts["estimated_degraded"] = _flag(meta, "degraded")
    found = newest(instance, scope.key(names.DRIFT_REPORT))
    if found:
        record, meta = found
        facts["drift_day"] = record.asset_materialization.partition
        facts["drift_share"] = _number(meta.get("share_drifted"))
        facts["drifted"] = _flag(meta, "drifted")
    return facts


def run_outcome(run: dg.DagsterRun) -> str:
    """ok, gates failed, failed, running or canceled."""
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return OK
    if run.status == dg.DagsterRunStatus.FAILURE:
        return GATES_FAILED if run.tags.get(names.GATES_TAG) == GATE_FAILED else FAILED
    return "running" if run.status in IN_FLIGHT else "canceled"


def retrain_facts(instance: dg.DagsterInstance, scope: Scope) -> dict[str, Any]:
    """The newest retraining that counts (day, reason) and how the newest retraining run ended."""
    facts: dict[str, Any] = {}
    last = last_retrain(instance, scope)
    if last:
        facts["retrain_day"], facts["retrain_reason"] = last
    runs = instance.get_run_records(
        filters=dg.RunsFilter(job_name=scope.name(names.RETRAIN_JOB)), limit=1
    )
    if runs:
        facts["retrain_outcome"] = run_outcome(runs[0].dagster_run)
    return facts


def _day_of(instance: dg.DagsterInstance, scope: Scope, record: Any) -> str | None:
    """The data day a promoted_model record was decided on: its run's tag, else the newest drift
    report's day before it (a rollback from the command line has no data day)."""
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    day = run.tags.get(names.DATA_DAY_TAG) if run is not None else None
    if day:
        return day
    before = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=scope.key(names.DRIFT_REPORT), before_storage_id=record.storage_id
        ),
        limit=1,
    ).records
    event = before[0].asset_materialization if before else None
    return event.partition if event is not None else None


def champion_since(instance: dg.DagsterInstance, scope: Scope, champion: str) -> str | None:
    """The data day the champion took over: the newest promotion or rollback to it."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=scope.key(names.PROMOTED_MODEL)), limit=PROMOTIONS_LOOKBACK
    ).records
    for record in records:  # newest first
        meta = _values(record)
        if meta.get("decision") in MOVES and str(meta.get("new_version")) == champion:
            return _day_of(instance, scope, record)
    return None


def registry_of(cfg: RetrainConfig) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=cfg.tracking_uri,
        registered_name=cfg.model.registered_name,
        ui_url=cfg.mlflow.ui_url,
    )


def store_missing(tracking_uri: str) -> bool:
    """A local SQLite tracking store that does not exist yet: nothing is registered (reading it
    would create it, and a status must not)."""
    prefix = "sqlite:///"
    return tracking_uri.startswith(prefix) and not Path(tracking_uri[len(prefix) :]).exists()


def champion_facts(cfg: RetrainConfig, instance: dg.DagsterInstance) -> dict[str, Any]:
    """The champion's version, test metric and first data day; a read error instead when the
    registry cannot be read (one model's registry must not hide the others)."""
    if store_missing(cfg.tracking_uri):
        return {}
    registry = registry_of(cfg)
    try:
        champion = registry.alias_version(names.CHAMPION)
        test = registry.test_metric(champion) if champion else None
    except Exception as exc:  # an unreachable server, a broken store: shown, never raised
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return {"read_error": f"MLflow registry: {type(exc).__name__}: {first}"}
    if champion is None:
        return {}
    since = champion_since(instance, Scope.of(cfg), champion)
    return dict(champion=champion, test_metric=test, champion_since=since)  # ModelStatus fields


def collect_status(
    cfg: RetrainConfig, instance: dg.DagsterInstance, name: str | None = None
) -> ModelStatus:
    """One model's facts now, from the instance and its MLflow registry. ``name`` defaults to
    the model's fleet name (a single file: its registered model's name)."""
    from retrain_assets.lib.training.tasks import task_metrics

    scope = Scope.of(cfg)
    metric = task_metrics(cfg.task)[0]
    facts: dict[str, Any] = {
        "name": name or cfg.fleet_model or cfg.model.registered_name,
        "task": cfg.task,
        "metric": metric.name,
        "higher_is_better": metric.higher_is_better,
        **report_facts(instance, scope, cfg.task),
        **retrain_facts(instance, scope),
        **champion_facts(cfg, instance),
        "challenger": challenger_in_shadow(instance, scope=scope),
    }
    days = [facts.get(k) for k in ("live_day", "estimated_day", "drift_day")]
    facts["newest_day"] = max((d for d in days if d), default=None)
    return ModelStatus(**facts)


def thresholds_of(cfg: RetrainConfig) -> Thresholds:
    """When a model needs attention, from its own config."""
    return Thresholds(
        relative_drop=cfg.performance.relative_drop,
        estimated_relative_drop=cfg.estimation.relative_drop,
        stale_days=STALE_FACTOR * cfg.schedule.max_days_between_retrains,
    )


def broken_status(broken: BrokenModel) -> ModelStatus:
    return ModelStatus(name=broken.name, config_error=config_error_text(broken.file, broken.error))


def fleet_rows(fleet: Fleet, instance: dg.DagsterInstance) -> list[StatusRow]:
    """Every model's row (broken ones too), those needing attention first."""
    rows = [
        assess(collect_status(cfg, instance, name), thresholds_of(cfg))
        for name, cfg in fleet.models.items()
    ]
    rows += [assess(broken_status(b)) for b in fleet.broken]
    return ordered(rows)


def status_png_path(fleet: Fleet) -> Path:
    """``<fleet folder>/.retrain/fleet_status.png`` (a single file: in its model's workdir)."""
    if fleet.folder is not None:
        return fleet.folder / STATE_DIR / STATUS_PNG
    [cfg] = fleet.models.values()
    return Path(cfg.workdir) / STATUS_PNG


def summarise_fleet(fleet: Fleet, instance: dg.DagsterInstance) -> dg.MaterializeResult:
    rows = fleet_rows(fleet, instance)
    png = plot_status_png(rows, status_png_path(fleet))
    metadata: dict[str, dg.RawMetadataValue] = {
        "table": dg.MetadataValue.md(status_table(rows)),
        "chart": dg.MetadataValue.path(str(png)),
        **counts(rows),
        "attention": dg.MetadataValue.json({r.status.name: r.reasons for r in rows}),
    }
    return dg.MaterializeResult(metadata=metadata)


def promotion_keys(fleet: Fleet) -> list[dg.AssetKey]:
    """Every loaded model's promoted_model key."""
    return [Scope.of(cfg).key(names.PROMOTED_MODEL) for cfg in fleet.models.values()]


def new_promotions(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], cursor: dict[str, int]
) -> dict[str, int]:
    """For each key materialised after its cursor's storage id, its newest storage id."""
    found: dict[str, int] = {}
    for key in keys:
        name = key.to_user_string()
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor.get(name)), limit=1
        ).records
        if records:
            found[name] = records[0].storage_id
    return found


def promotion_tick(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One run of fleet_status_job when a champion may have moved since the cursor (a JSON map
    of promoted_model key -> newest storage id seen), with the cursor moved on."""
    seen: dict[str, int] = json.loads(cursor) if cursor else {}
    found = new_promotions(instance, keys, seen)
    if not found:
        return dg.SkipReason("no promotion, rollback or canary decision since the last refresh")
    seen.update(found)
    request = dg.RunRequest(run_key=f"{names.FLEET_STATUS}:{max(found.values())}")
    return dg.SensorResult(run_requests=[request], cursor=json.dumps(seen, sort_keys=True))


def build_overview_defs(fleet: Fleet, cron: str = FLEET_STATUS_CRON) -> dg.Definitions:
    """fleet_status, its job, its schedule and the sensor that refreshes it after a promotion."""
    keys = promotion_keys(fleet)
    read = [
        Scope.of(cfg).key(asset)
        for cfg in fleet.models.values()
        for asset in (names.PERFORMANCE_REPORT, names.DRIFT_REPORT, names.PROMOTED_MODEL)
    ]

    @dg.asset(key=names.FLEET_STATUS, group_name=names.FLEET_GROUP, deps=read)
    def fleet_status(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Every model at a glance: task, metric, champion and its age in data days, live (and
        estimated) metric against its test value, last drift, last retraining, challenger in
        canary, and why a model needs attention (broken models too); a table and a chart.

        Refreshed by fleet_status_schedule and after every promotion or rollback."""
        return summarise_fleet(fleet, context.instance)

    job = dg.define_asset_job(names.FLEET_STATUS_JOB, selection=[fleet_status])
    schedule = dg.ScheduleDefinition(
        name=names.FLEET_STATUS_SCHEDULE,
        cron_schedule=cron,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )

    @dg.sensor(
        name=names.FLEET_STATUS_SENSOR,
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def fleet_status_sensor(context: dg.SensorEvaluationContext):
        """Refresh fleet_status after any model's promoted_model materialisation (a promotion, a
        rollback, or a canary's decision): at most one run per tick."""
        return promotion_tick(context.instance, keys, context.cursor)

    return dg.Definitions(
        assets=[fleet_status], jobs=[job], schedules=[schedule], sensors=[fleet_status_sensor]
    )
