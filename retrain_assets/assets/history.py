"""model_history: when did the model begin to degrade, and what did the platform do about it?

One row per data day, read from Dagster's own records (performance and drift reports, retraining
runs, promotions and rollbacks) plus one row per retraining cycle from MLflow; a chart and a
change-point estimate of the day live AUC fell.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.history import new_materializations
from retrain_assets.jobs import RETRAIN_JOB
from retrain_assets.resources.registry import ModelRegistry
from retrain_assets.resources.storage import LandingStore
from retrain_assets.tags import DATA_DAY_TAG, REASON_TAG

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd


def daily_facts(instance: dg.DagsterInstance) -> list[dict[str, Any]]:
    """Per-day dicts for lib.model_history.history_frame, from Dagster's records."""
    days: list[dict[str, Any]] = []
    latest_day = None
    sources = {
        "performance": "performance_report",
        "drift": "drift_report",
        "release": "promoted_model",
    }
    timeline = sorted(
        (storage_id, kind, day, meta)
        for kind, asset in sources.items()
        for storage_id, day, meta in new_materializations(instance, asset, None)
    )
    for _, kind, day, meta in timeline:
        if day is not None:
            latest_day = max(latest_day or day, day)
        if kind == "performance" and day:
            days.append(
                {
                    "day": day,
                    "live_auc": meta.get("auc"),
                    "champion_version": meta.get("champion_version"),
                }
            )
        elif kind == "drift" and day:
            days.append({"day": day, "drift_share": meta.get("share_drifted")})
        elif kind == "release" and latest_day:
            if meta.get("decision") == "promote":
                days.append({"day": latest_day, "promoted_to": meta.get("new_version")})
            elif meta.get("decision") == "rollback":
                days.append({"day": latest_day, "rolled_back_to": meta.get("new_version")})
    for record in instance.get_run_records(dg.RunsFilter(job_name=RETRAIN_JOB)):
        tags = record.dagster_run.tags
        if tags.get(DATA_DAY_TAG):
            days.append({"day": tags[DATA_DAY_TAG], "retrain_reasons": tags.get(REASON_TAG, "")})
    return days


def mlflow_cycles(registry: ModelRegistry, experiment: str) -> "pd.DataFrame":
    """One row per retraining cycle logged to MLflow (newest first)."""
    import mlflow
    import pandas as pd

    client = registry.client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    runs = mlflow.search_runs([found.experiment_id], max_results=200, order_by=["start_time DESC"])
    wanted = {
        "start_time": "started",
        "tags.retrain.reason": "reason",
        "metrics.test_auc": "test_auc",
        "metrics.champion_test_auc": "champion_test_auc",
        "tags.dvc_md5": "dvc_md5",
        "params.strategy": "strategy",
        "status": "status",
    }
    present = [c for c in wanted if c in runs]
    return runs[present].rename(columns=wanted)


def build_history_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    @dg.asset(group_name="release", deps=["performance_report", "drift_report", "promoted_model"])
    def model_history(
        context: dg.AssetExecutionContext, store: LandingStore, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        """Per data day: live AUC, champion version, drift share, retraining reasons, promotions
        and rollbacks; the day live AUC began to fall; a chart. Refreshed by every retraining,
        canary and rollback run (or on demand)."""
        from retrain_assets.lib.release import timeline as lib

        frame = lib.history_frame(daily_facts(context.instance))
        change = lib.degradation_start(frame) if len(frame) else None
        png = store.path_for("monitoring", "model_history.png")
        if len(frame):
            lib.plot_png(frame, png, change)
        cycles = mlflow_cycles(registry, cfg.mlflow.experiment_name)
        metadata: dict[str, dg.RawMetadataValue] = {
            "days": len(frame),
            "history": dg.MetadataValue.md(lib.to_markdown(frame) if len(frame) else "no data"),
            "degradation_began": change["day"] if change else "not detected",
            "retraining_cycles": len(cycles),
        }
        if change:
            metadata["auc_before"], metadata["auc_after"] = change["before"], change["after"]
        if len(frame):
            metadata["chart"] = dg.MetadataValue.path(str(png))
        if len(cycles):
            metadata["cycles"] = dg.MetadataValue.md(cycles.head(30).to_markdown(index=False))
        return dg.MaterializeResult(metadata=metadata)

    return [model_history]
