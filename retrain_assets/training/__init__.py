"""Training: the triggers, the versioned training set and the gated candidate model."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.scope import Scope
from retrain_assets.training.assets import build_training_assets
from retrain_assets.training.jobs import build_retrain_job
from retrain_assets.training.triggers import build_triggers


def build_training_defs(cfg: RetrainConfig) -> dg.Definitions:
    retrain_job = build_retrain_job(Scope.of(cfg))
    sensors, schedules = build_triggers(cfg, retrain_job)
    return dg.Definitions(
        assets=build_training_assets(cfg),
        jobs=[retrain_job],
        sensors=sensors,
        schedules=schedules,
    )
