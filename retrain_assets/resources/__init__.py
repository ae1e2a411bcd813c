"""The resources every domain shares, built from one config."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.mlflow import MlflowTracking
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import DVC, MLFLOW, REGISTRY, STORE, Scope


def experiment_artifact_location(cfg: RetrainConfig) -> str:
    """Where a new experiment keeps its artifacts: <workdir>/mlruns with a local store (else they
    land in ./mlruns of whatever folder a process runs in); with a tracking server, "" lets the
    server decide (its --artifacts-destination), so steps on any host can log and load models."""
    if cfg.tracking_uri.startswith(("http://", "https://")):
        return ""
    return (cfg.workdir / "mlruns").as_uri()


def build_resources(cfg: RetrainConfig) -> dict[str, dg.ConfigurableResource]:
    """One model's resources, keyed as its scope names them (`store`, or `<model>_store`)."""
    workdir = str(cfg.workdir)
    scope = Scope.of(cfg)
    resources: dict[str, dg.ConfigurableResource] = {
        STORE: LandingStore(landing_dir=str(cfg.data.landing_dir), workdir=workdir),
        DVC: DvcRepository(root=workdir),
        MLFLOW: MlflowTracking(
            experiment_name=cfg.mlflow.experiment_name,
            mlflow_tracking_uri=cfg.tracking_uri,
            artifact_location=experiment_artifact_location(cfg),
            ui_url=cfg.mlflow.ui_url,
        ),
        REGISTRY: ModelRegistry(
            tracking_uri=cfg.tracking_uri,
            registered_name=cfg.model.registered_name,
            ui_url=cfg.mlflow.ui_url,
        ),
    }
    return {scope.resource(key): resource for key, resource in resources.items()}
