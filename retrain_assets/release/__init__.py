"""Release: the canary, the champion alias (promotion and rollback), the guardrail and the
model's history."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.release.assets import build_release_assets
from retrain_assets.release.jobs import build_release_jobs
from retrain_assets.release.model_history import build_model_history_asset
from retrain_assets.release.sensors import build_release_sensors
from retrain_assets.scope import Scope


def build_release_defs(cfg: RetrainConfig) -> dg.Definitions:
    canary_job, rollback_job = build_release_jobs(Scope.of(cfg))
    return dg.Definitions(
        assets=[*build_release_assets(cfg), build_model_history_asset(cfg)],
        jobs=[canary_job, rollback_job],
        sensors=build_release_sensors(cfg, canary_job, rollback_job),
    )
