"""Build the code location's Definitions from one config (kept apart so tests build their own)."""

from __future__ import annotations

import warnings

import dagster as dg

from retrain_assets.assets.history import build_history_assets
from retrain_assets.assets.ingest import build_ingest_assets
from retrain_assets.assets.monitor import build_monitor_assets
from retrain_assets.assets.performance import build_performance_assets
from retrain_assets.assets.release import build_release_assets
from retrain_assets.assets.train import build_train_assets
from retrain_assets.config import RetrainConfig
from retrain_assets.jobs import build_jobs
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.mlflow import MlflowTracking
from retrain_assets.resources.registry import ModelRegistry
from retrain_assets.resources.storage import LandingStore
from retrain_assets.schedules import build_weekly_schedule
from retrain_assets.sensors import (
    build_bootstrap_sensor,
    build_canary_sensor,
    build_drift_sensor,
    build_guardrail_sensor,
    build_landing_sensor,
    build_performance_sensor,
)

# Partitioned asset-check specs are a "preview" API in Dagster 1.13 and dagster-mlflow is "beta";
# both are used on purpose, and the warnings would repeat in every process's log.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def daily_partitions(cfg: RetrainConfig) -> dg.DailyPartitionsDefinition:
    # end_offset=1: a batch that lands today is processed today.
    return dg.DailyPartitionsDefinition(start_date=cfg.data.start_date.isoformat(), end_offset=1)


def experiment_artifact_location(cfg: RetrainConfig) -> str:
    """Where a new experiment keeps its artifacts: <workdir>/mlruns with a local store (else they
    land in ./mlruns of whatever folder a process runs in); with a tracking server, "" lets the
    server decide (its --artifacts-destination, proxied over HTTP), so steps on any host can log
    and load models."""
    if cfg.tracking_uri.startswith(("http://", "https://")):
        return ""
    return (cfg.workdir / "mlruns").as_uri()


def build_resources(cfg: RetrainConfig) -> dict[str, dg.ConfigurableResource]:
    workdir = str(cfg.workdir)
    return {
        "store": LandingStore(landing_dir=str(cfg.data.landing_dir), workdir=workdir),
        "dvc": DvcRepository(root=workdir),
        "mlflow": MlflowTracking(
            experiment_name=cfg.mlflow.experiment_name,
            mlflow_tracking_uri=cfg.tracking_uri,
            artifact_location=experiment_artifact_location(cfg),
            ui_url=cfg.mlflow.ui_url,
        ),
        "registry": ModelRegistry(
            tracking_uri=cfg.tracking_uri,
            registered_name=cfg.model.registered_name,
            ui_url=cfg.mlflow.ui_url,
        ),
    }


def build_definitions(cfg: RetrainConfig) -> dg.Definitions:
    daily = daily_partitions(cfg)
    jobs = build_jobs(daily)
    return dg.Definitions(
        assets=[
            *build_ingest_assets(cfg, daily),
            *build_train_assets(cfg),
            *build_release_assets(cfg),
            *build_monitor_assets(cfg, daily),
            *build_performance_assets(cfg, daily),
            *build_history_assets(cfg),
        ],
        jobs=list(jobs.values()),
        sensors=[
            build_landing_sensor(cfg, daily, jobs),
            build_bootstrap_sensor(cfg, jobs),
            build_drift_sensor(cfg, jobs),
            build_performance_sensor(cfg, jobs),
            build_canary_sensor(cfg, jobs),
            build_guardrail_sensor(cfg, jobs),
        ],
        schedules=[build_weekly_schedule(cfg, jobs)],
        resources=build_resources(cfg),
    )
