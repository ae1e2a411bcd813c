"""Sensors: new landing files, the first champion, and the soft retraining triggers.

All of them reason about data, not the wall clock: a file is new when its content hash is;
cooldowns and streaks count partition days (data time), so a replay of history behaves as live.
Each reads new materialisations after its cursor, never the whole history.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.history import (
    challenger_in_shadow,
    days_between,
    last_retrain_day,
    new_materializations,
)
from retrain_assets.jobs import CANARY_JOB, INGEST_JOB, REFERENCE_JOB, RETRAIN_JOB, ROLLBACK_JOB
from retrain_assets.lib.data.landing_files import READERS, landing_day
from retrain_assets.tags import DATA_DAY_TAG, EVIDENCE_TAG, REASON_TAG

ASSETS_OF_KIND = {
    "features": ["feature_batch", "drift_report", "predictions"],
    "labels": ["label_batch", "performance_report"],
}
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
KEEP_DAYS = 60  # drift verdicts kept in the cursor: enough for any streak, bounded in size


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _landing_files(landing: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every file the contract knows, in a stable order."""
    found = [("reference", p) for p in sorted(landing.glob("reference.*")) if p.suffix in READERS]
    for kind in ASSETS_OF_KIND:
        folder = landing / kind
        if folder.is_dir():
            found += [(kind, p) for p in sorted(folder.iterdir()) if p.is_file()]
    return found


def _retrain_request(key: str, reason: str, evidence: str, day: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=key,
        job_name=RETRAIN_JOB,
        tags={REASON_TAG: reason, EVIDENCE_TAG: evidence[:1000], DATA_DAY_TAG: day},
    )


def _held_back(day: str, last: str | None, cooldown: int, shadow: str | None) -> str | None:
    """Why a soft trigger must not retrain on `day` (None when it may): within the cooldown of the
    last retraining (at most one per data day), or a challenger still in its canary."""
    if last is not None and days_between(last, day) < max(cooldown, 1):
        return f"within the {cooldown}-day cooldown after the retraining of {last}"
    if shadow is not None:
        return f"challenger v{shadow} is still in its canary"
    return None


def _features_in_flight(instance: dg.DagsterInstance) -> str | None:
    """The oldest day whose feature ingest run is queued or running (labels wait behind it)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=INGEST_JOB, tags={"landing/kind": "features"}, statuses=IN_FLIGHT
        )
    )
    days = [r.dagster_run.tags.get("dagster/partition") for r in records]
    return min((d for d in days if d), default=None)


def _outside_calendar(day: str | None, first: str | None, last: str | None) -> str | None:
    """Why a file in features/ or labels/ is not a daily partition (None when it is one)."""
    if day is None:
        return "not named YYYY-MM-DD.parquet/.pq/.csv"
    if first is None or last is None:
        return "no daily partition exists yet (data.start_date is in the future)"
    if day < first:
        return f"dated before data.start_date {first} (never ingested)"
    if day > last:
        return f"dated after the last daily partition {last} (picked up when its day comes)"
    return None


def _some(files: list[str], show: int = 5) -> str:
    more = f" and {len(files) - show} more" if len(files) > show else ""
    return ", ".join(files[:show]) + more


def build_landing_sensor(
    cfg: RetrainConfig, daily: dg.DailyPartitionsDefinition, jobs: dict
) -> dg.SensorDefinition:
    landing = cfg.data.landing_dir

    @dg.sensor(
        name="landing_sensor",
        minimum_interval_seconds=cfg.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=[jobs[INGEST_JOB], jobs[REFERENCE_JOB]],
        description="One ingest run per new or changed landing file (keyed by content hash). "
        "Day files wait for the first champion (they are scored when ingested); a label file "
        "waits while feature runs of its day or earlier are still queued or running. Files "
        "that are no daily partition (misnamed, before start_date, in the future) are named in "
        "the skip reason or the tick's log.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        # cursor: {relative path: [size, mtime_ns, sha256]}; the hash is recomputed only when the
        # size or mtime moved, and a request is made only when the hash did.
        seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
        instance = context.instance
        ready = all(
            instance.get_latest_materialization_event(dg.AssetKey(k)) is not None
            for k in ("promoted_model", "reference_profile")
        )
        busy_from = _features_in_flight(instance) if ready else None
        # Once per tick: has_partition_key() walks the calendar and costs ~0.25 ms per file.
        first, last = daily.get_first_partition_key(), daily.get_last_partition_key()
        requests: list[dg.RunRequest] = []
        waiting: list[str] = []
        outside: dict[str, list[str]] = {}  # why -> files never requested (this tick)
        for kind, path in _landing_files(landing):
            rel = path.relative_to(landing).as_posix()
            day = None
            if kind != "reference":
                parsed = landing_day(path)
                day = parsed.isoformat() if parsed else None
                why = _outside_calendar(day, first, last)
                if why:
                    if not path.name.startswith("."):  # hidden and temporary files: no news
                        outside.setdefault(why, []).append(rel)
                    continue
            stat = path.stat()
            before = seen.get(rel)
            if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
                continue
            if day is not None and not ready:
                waiting.append(rel)
                continue
            if kind == "labels" and busy_from is not None and day is not None and busy_from <= day:
                waiting.append(rel)
                continue
            sha = file_sha256(path)
            seen[rel] = [stat.st_size, stat.st_mtime_ns, sha]
            if before and before[2] == sha:
                continue
            tags = {"landing/file": rel, "landing/sha256": sha, "landing/kind": kind}
            if kind == "reference":
                requests.append(
                    dg.RunRequest(run_key=f"{rel}@{sha}", job_name=REFERENCE_JOB, tags=tags)
                )
                continue
            if kind == "features" and day and (busy_from is None or day < busy_from):
                busy_from = day  # labels of this day or later wait for this run
            requests.append(
                dg.RunRequest(
                    run_key=f"{rel}@{sha}",
                    job_name=INGEST_JOB,
                    partition_key=day,
                    asset_selection=[dg.AssetKey(a) for a in ASSETS_OF_KIND[kind]],
                    tags=tags,
                )
            )
        context.update_cursor(json.dumps(seen, sort_keys=True))
        skipped = "; ".join(f"{why}: {_some(files)}" for why, files in outside.items())
        if requests:
            if skipped:
                context.log.info(f"not ingested: {skipped}")
            return requests
        if waiting:
            why = "the first champion" if not ready else "feature runs of earlier days"
            message = f"{len(waiting)} landing file(s) wait for {why}"
        else:
            message = "no new or changed landing file"
        return dg.SkipReason(f"{message}; not ingested: {skipped}" if skipped else message)

    return landing_sensor


def build_bootstrap_sensor(cfg: RetrainConfig, jobs: dict) -> dg.SensorDefinition:
    before_start = (cfg.data.start_date - dt.timedelta(days=1)).isoformat()

    @dg.sensor(
        name="bootstrap_sensor",
        minimum_interval_seconds=cfg.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=jobs[RETRAIN_JOB],
        description="With no champion yet, train the first one as soon as the reference landed.",
    )
    def bootstrap_sensor(context: dg.SensorEvaluationContext):
        instance = context.instance
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("reference_dataset")), limit=1
        ).records
        if not latest:
            return dg.SkipReason("the reference set has not been ingested yet")
        if instance.get_latest_materialization_event(dg.AssetKey("promoted_model")) is not None:
            return dg.SkipReason("a champion exists")
        storage_id = latest[0].storage_id
        return _retrain_request(
            f"bootstrap@{storage_id}",
            "bootstrap",
            f"no champion; reference_dataset materialised (storage id {storage_id})",
            before_start,
        )

    return bootstrap_sensor


def build_drift_sensor(cfg: RetrainConfig, jobs: dict) -> dg.SensorDefinition:
    need, cooldown = cfg.drift.consecutive, cfg.drift.cooldown_days

    @dg.sensor(
        name="drift_sensor",
        minimum_interval_seconds=cfg.drift.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=jobs[RETRAIN_JOB],
        description=f"Retrain after {need} drifted batches in a row, at most once per "
        f"{cooldown} data days.",
    )
    def drift_sensor(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {"after": None, "days": {}}
        days: dict[str, list] = state["days"]
        requests: list[dg.RunRequest] = []
        last = last_retrain_day(context.instance)
        shadow = challenger_in_shadow(context.instance)
        for storage_id, day, meta in new_materializations(
            context.instance, "drift_report", state["after"]
        ):
            state["after"] = storage_id
            if day is None:
                continue
            days[day] = [bool(meta.get("drifted")), str(meta.get("evidence", ""))]
            streak = sorted(d for d in days if d <= day)[-need:]
            if len(streak) < need or not all(days[d][0] for d in streak):
                continue
            held = _held_back(day, last, cooldown, shadow)
            if held:
                context.log.info(f"drift on {day}: {held}")
                continue
            evidence = (
                f"{days[day][1]} on {day}; {need} drifted batches in a row ({streak[0]}..{day})"
            )
            requests.append(_retrain_request(f"drift@{day}", "drift", evidence, day))
            last = day
        state["days"] = {d: days[d] for d in sorted(days)[-KEEP_DAYS:]}
        context.update_cursor(json.dumps(state))
        return requests or dg.SkipReason("no retrain-worthy drift in new drift reports")

    return drift_sensor


def build_performance_sensor(cfg: RetrainConfig, jobs: dict) -> dg.SensorDefinition:
    cooldown = cfg.performance.cooldown_days

    @dg.sensor(
        name="performance_sensor",
        minimum_interval_seconds=cfg.performance.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=jobs[RETRAIN_JOB],
        description="Retrain when live performance degraded or concept drift was detected "
        f"(at most one retraining per data day, {cooldown} data days apart).",
    )
    def performance_sensor(context: dg.SensorEvaluationContext):
        after = int(context.cursor) if context.cursor else None
        requests: list[dg.RunRequest] = []
        last = last_retrain_day(context.instance)
        shadow = challenger_in_shadow(context.instance)
        for storage_id, day, meta in new_materializations(
            context.instance, "performance_report", after
        ):
            after = storage_id
            if day is None or not (meta.get("degraded") or meta.get("concept_drift")):
                continue
            held = _held_back(day, last, cooldown, shadow)
            if held:
                context.log.info(f"degradation on {day}: {held}")
                continue
            reason = "concept" if meta.get("concept_drift") else "performance"
            evidence = f"{meta.get('reason', '')} on {day}"
            requests.append(_retrain_request(f"{reason}@{day}", reason, evidence, day))
            last = day
        if after is not None:
            context.update_cursor(str(after))
        return requests or dg.SkipReason("no degradation in new performance reports")

    return performance_sensor


def build_canary_sensor(cfg: RetrainConfig, jobs: dict) -> dg.SensorDefinition:
    need = cfg.canary.min_rows

    @dg.sensor(
        name="canary_sensor",
        minimum_interval_seconds=cfg.canary.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=jobs[CANARY_JOB],
        description=f"Evaluate the challenger once {need} labelled rows were scored by both it "
        "and the champion (counted from performance reports).",
    )
    def canary_sensor(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {"after": None, "rows": {}}
        requests: list[dg.RunRequest] = []
        for storage_id, day, meta in new_materializations(
            context.instance, "performance_report", state["after"]
        ):
            state["after"] = storage_id
            version = str(meta.get("challenger_version", "none"))
            if version == "none":
                continue
            before = state["rows"].get(version, 0)
            total = before + int(meta.get("challenger_labelled_rows", 0))
            state["rows"][version] = total
            if before < need <= total:
                requests.append(
                    dg.RunRequest(
                        run_key=f"canary@v{version}",
                        job_name=CANARY_JOB,
                        tags={
                            REASON_TAG: "canary",
                            EVIDENCE_TAG: f"{total} labelled shadow rows for v{version} by {day}",
                            DATA_DAY_TAG: day or "",
                        },
                    )
                )
        state["rows"] = dict(list(state["rows"].items())[-20:])
        context.update_cursor(json.dumps(state))
        return requests or dg.SkipReason("no challenger with enough labelled shadow rows")

    return canary_sensor


def build_guardrail_sensor(cfg: RetrainConfig, jobs: dict) -> dg.SensorDefinition:
    @dg.sensor(
        name="guardrail_sensor",
        minimum_interval_seconds=cfg.guardrail.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING
        if cfg.guardrail.enabled
        else dg.DefaultSensorStatus.STOPPED,
        job=jobs[ROLLBACK_JOB],
        description=f"Roll back when, in the first {cfg.guardrail.batches} labelled batches "
        "after a promotion, the new champion does worse than the previous one on the same rows.",
    )
    def guardrail_sensor(context: dg.SensorEvaluationContext):
        after = int(context.cursor) if context.cursor else None
        requests: list[dg.RunRequest] = []
        for storage_id, day, meta in new_materializations(
            context.instance, "performance_report", after
        ):
            after = storage_id
            if not meta.get("guardrail_regression"):
                continue
            champion = str(meta.get("champion_version"))
            reason = f"guardrail on {day}: {meta.get('guardrail_reason', '')}"
            config = {"rollback": True, "reason": reason[:500], "requested_by": "guardrail_sensor"}
            requests.append(
                dg.RunRequest(
                    run_key=f"guardrail@v{champion}",
                    job_name=ROLLBACK_JOB,
                    run_config={"ops": {"promoted_model": {"config": config}}},
                    tags={REASON_TAG: "rollback", EVIDENCE_TAG: reason[:1000]},
                )
            )
        if after is not None:
            context.update_cursor(str(after))
        return requests or dg.SkipReason("no post-promotion regression")

    return guardrail_sensor
