"""Sensors: new landing files, and the first champion.

Both reason about data, not the wall clock: a file is new when its content hash is, and the
bootstrap fires once per reference materialisation while no champion exists.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.jobs import INGEST_JOB, REFERENCE_JOB, RETRAIN_JOB
from retrain_assets.lib.contract import READERS, landing_day
from retrain_assets.tags import EVIDENCE_TAG, REASON_TAG

ASSET_OF_KIND = {"features": "feature_batch", "labels": "label_batch"}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _landing_files(landing: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every file the contract knows, in a stable order."""
    found = [("reference", p) for p in sorted(landing.glob("reference.*")) if p.suffix in READERS]
    for kind in ASSET_OF_KIND:
        folder = landing / kind
        if folder.is_dir():
            found += [(kind, p) for p in sorted(folder.iterdir()) if p.is_file()]
    return found


def build_landing_sensor(
    cfg: RetrainConfig, daily: dg.DailyPartitionsDefinition, jobs: dict
) -> dg.SensorDefinition:
    landing = cfg.data.landing_dir

    @dg.sensor(
        name="landing_sensor",
        minimum_interval_seconds=cfg.ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=[jobs[INGEST_JOB], jobs[REFERENCE_JOB]],
        description="One ingest run per new or changed landing file (keyed by content hash).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        # cursor: {relative path: [size, mtime_ns, sha256]}; the hash is recomputed only when the
        # size or mtime moved, and a request is made only when the hash did.
        seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
        requests: list[dg.RunRequest] = []
        skipped: list[str] = []
        for kind, path in _landing_files(landing):
            rel = path.relative_to(landing).as_posix()
            day = None
            if kind != "reference":
                parsed = landing_day(path)
                if parsed is None or not daily.has_partition_key(parsed.isoformat()):
                    skipped.append(rel)  # not a day file, before start_date or in the future
                    continue
                day = parsed.isoformat()
            stat = path.stat()
            before = seen.get(rel)
            if before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns:
                continue
            sha = file_sha256(path)
            seen[rel] = [stat.st_size, stat.st_mtime_ns, sha]
            if before and before[2] == sha:
                continue
            tags = {"landing/file": rel, "landing/sha256": sha}
            if kind == "reference":
                requests.append(
                    dg.RunRequest(
                        run_key=f"{rel}@{sha}",
                        job_name=REFERENCE_JOB,
                        tags=tags,
                    )
                )
            else:
                requests.append(
                    dg.RunRequest(
                        run_key=f"{rel}@{sha}",
                        job_name=INGEST_JOB,
                        partition_key=day,
                        asset_selection=[dg.AssetKey(ASSET_OF_KIND[kind])],
                        tags=tags,
                    )
                )
        if skipped:
            context.log.info(
                f"landing files outside the partition range, left for later: {skipped}"
            )
        context.update_cursor(json.dumps(seen, sort_keys=True))
        if not requests:
            return dg.SkipReason("no new or changed landing file")
        return requests

    return landing_sensor


def build_bootstrap_sensor(cfg: RetrainConfig, jobs: dict) -> dg.SensorDefinition:
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
        return dg.RunRequest(
            run_key=f"bootstrap@{latest[0].storage_id}",
            job_name=RETRAIN_JOB,
            tags={
                REASON_TAG: "bootstrap",
                EVIDENCE_TAG: f"no champion; reference_dataset materialised (storage id "
                f"{latest[0].storage_id})",
            },
        )

    return bootstrap_sensor
