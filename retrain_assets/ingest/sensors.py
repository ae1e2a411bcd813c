"""landing_sensor: one ingest run per new or changed landing file.

A file is new when its content hash is (the hash is recomputed only when size or mtime moved).
Day files wait for the first champion (they are scored when ingested); a label file waits while
feature runs of its day or earlier are queued or running.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.data.landing_files import READERS, landing_day
from retrain_assets.lib.files import file_sha256
from retrain_assets.records import IN_FLIGHT
from retrain_assets.scope import SINGLE, Scope

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )

ASSETS_OF_KIND = {
    "features": [
        names.FEATURE_BATCH,
        names.DRIFT_REPORT,
        names.PREDICTIONS,
        names.ESTIMATED_PERFORMANCE,
    ],
    "labels": [names.LABEL_BATCH, names.PERFORMANCE_REPORT],
}


def landing_files(landing: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every file the contract knows, in a stable order."""
    found = [("reference", p) for p in sorted(landing.glob("reference.*")) if p.suffix in READERS]
    for kind in ASSETS_OF_KIND:
        folder = landing / kind
        if folder.is_dir():
            found += [(kind, p) for p in sorted(folder.iterdir()) if p.is_file()]
    return found


def features_in_flight(instance: dg.DagsterInstance, scope: Scope) -> str | None:
    """The oldest day whose feature ingest run is queued or running (labels wait behind it)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=scope.name(names.INGEST_JOB),
            tags={names.LANDING_KIND_TAG: "features"},
            statuses=IN_FLIGHT,
        )
    )
    days = [r.dagster_run.tags.get(names.PARTITION_TAG) for r in records]
    return min((d for d in days if d), default=None)


def outside_calendar(day: str | None, first: str | None, last: str | None) -> str | None:
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


def some(files: list[str], show: int = 5) -> str:
    more = f" and {len(files) - show} more" if len(files) > show else ""
    return ", ".join(files[:show]) + more


@dataclass
class LandingScan:
    """One tick's pass over the landing folder."""

    seen: dict[str, list]  # cursor: {relative path: [size, mtime_ns, sha256]}
    ready: bool  # a champion and its profile exist: day files may be ingested
    busy_from: str | None  # labels of this day or later wait for a feature run
    requests: list[dg.RunRequest] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    outside: dict[str, list[str]] = field(default_factory=dict)  # why -> files never requested
    scope: Scope = SINGLE  # whose jobs the requests run

    def visit(self, kind: str, path: Path, rel: str, day: str | None) -> None:
        stat = path.stat()
        before = self.seen.get(rel)
        if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
            return
        if day is not None and not self.ready:
            self.waiting.append(rel)
            return
        if kind == "labels" and self.busy_from is not None and day and self.busy_from <= day:
            self.waiting.append(rel)
            return
        sha = file_sha256(path)
        self.seen[rel] = [stat.st_size, stat.st_mtime_ns, sha]
        if before and before[2] == sha:
            return
        self.requests.append(self.request(kind, rel, sha, day))

    def request(self, kind: str, rel: str, sha: str, day: str | None) -> dg.RunRequest:
        tags = self.scope.run_tags(
            {names.LANDING_FILE_TAG: rel, names.LANDING_SHA_TAG: sha, names.LANDING_KIND_TAG: kind}
        )
        if kind == "reference":
            job = self.scope.name(names.REFERENCE_JOB)
            return dg.RunRequest(run_key=f"{rel}@{sha}", job_name=job, tags=tags)
        if kind == "features" and day and (self.busy_from is None or day < self.busy_from):
            self.busy_from = day  # labels of this day or later wait for this run
        return dg.RunRequest(
            run_key=f"{rel}@{sha}",
            job_name=self.scope.name(names.INGEST_JOB),
            partition_key=day,
            asset_selection=self.scope.keys(*ASSETS_OF_KIND[kind]),
            tags=tags,
        )

    def skip_reason(self) -> str:
        if self.waiting:
            why = "the first champion" if not self.ready else "feature runs of earlier days"
            return f"{len(self.waiting)} landing file(s) wait for {why}"
        return "no new or changed landing file"


def scan_landing(
    landing: Path, daily: dg.DailyPartitionsDefinition, scan: LandingScan
) -> LandingScan:
    # Once per tick: has_partition_key() walks the calendar and costs ~0.25 ms per file.
    first, last = daily.get_first_partition_key(), daily.get_last_partition_key()
    for kind, path in landing_files(landing):
        rel = path.relative_to(landing).as_posix()
        day = None
        if kind != "reference":
            parsed = landing_day(path)
            day = parsed.isoformat() if parsed else None
            why = outside_calendar(day, first, last)
            if why:
                if not path.name.startswith("."):  # hidden and temporary files: no news
                    scan.outside.setdefault(why, []).append(rel)
                continue
        scan.visit(kind, path, rel, day)
    return scan


def evaluate_landing(
    context: dg.SensorEvaluationContext,
    landing: Path,
    daily: dg.DailyPartitionsDefinition,
    scope: Scope = SINGLE,
) -> list[dg.RunRequest] | dg.SkipReason:
    instance = context.instance
    ready = all(
        instance.get_latest_materialization_event(k) is not None
        for k in scope.keys(names.PROMOTED_MODEL, names.REFERENCE_PROFILE)
    )
    seen = json.loads(context.cursor) if context.cursor else {}
    busy_from = features_in_flight(instance, scope) if ready else None
    scan = scan_landing(landing, daily, LandingScan(seen, ready, busy_from, scope=scope))
    context.update_cursor(json.dumps(scan.seen, sort_keys=True))
    skipped = "; ".join(f"{why}: {some(files)}" for why, files in scan.outside.items())
    if scan.requests:
        if skipped:
            context.log.info(f"not ingested: {skipped}")
        return scan.requests
    message = scan.skip_reason()
    return dg.SkipReason(f"{message}; not ingested: {skipped}" if skipped else message)


def build_landing_sensor(
    cfg: RetrainConfig,
    daily: dg.DailyPartitionsDefinition,
    jobs: "list[AssetJob]",
) -> dg.SensorDefinition:
    scope = Scope.of(cfg)

    @dg.sensor(
        name=scope.name(names.LANDING_SENSOR),
        minimum_interval_seconds=cfg.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=jobs,
        description="One ingest run per new or changed landing file (keyed by content hash). "
        "Day files wait for the first champion (they are scored when ingested); a label file "
        "waits while feature runs of its day or earlier are still queued or running. Files "
        "that are no daily partition (misnamed, before start_date, in the future) are named in "
        "the skip reason or the tick's log.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        return evaluate_landing(context, cfg.data.landing_dir, daily, scope)

    return landing_sensor
