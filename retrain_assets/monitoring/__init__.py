"""Monitoring: the reference profile, daily drift reports, shadow-aware predictions, performance
estimated from them before labels arrive, and live performance once labels arrive."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.monitoring.drift import build_drift_assets
from retrain_assets.monitoring.estimated import build_estimated_asset
from retrain_assets.monitoring.performance import build_performance_asset
from retrain_assets.monitoring.predictions import build_predictions_asset


def build_monitoring_defs(
    cfg: RetrainConfig, daily: dg.DailyPartitionsDefinition
) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *build_drift_assets(cfg, daily),
            build_predictions_asset(cfg, daily),
            build_estimated_asset(cfg, daily),
            build_performance_asset(cfg, daily),
        ]
    )
