"""Ingest: landing files checked against the data contract and stored, one run per new file."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.ingest.assets import build_ingest_assets
from retrain_assets.ingest.jobs import build_ingest_jobs
from retrain_assets.ingest.sensors import build_landing_sensor
from retrain_assets.scope import Scope


def build_ingest_defs(cfg: RetrainConfig, daily: dg.DailyPartitionsDefinition) -> dg.Definitions:
    jobs = build_ingest_jobs(daily, Scope.of(cfg))
    return dg.Definitions(
        assets=build_ingest_assets(cfg, daily),
        jobs=jobs,
        sensors=[build_landing_sensor(cfg, daily, jobs)],
    )
