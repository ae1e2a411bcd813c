"""model_history: when did the model begin to degrade, and what did the platform do about it?

One row per data day, read from Dagster's own records (performance and drift reports, retraining
runs, promotions and rollbacks), plus one row per retraining cycle from MLflow; a chart and a
change-point estimate of the day the live metric began to degrade (lib/release/timeline.py).

The metric is the model task's primary one (``cfg.task``: binary ROC AUC, multiclass macro ROC
AUC, regression RMSE); a degradation is a fall of an AUC and a rise of an RMSE. Binary keeps its
AUC columns and keys (``live_auc``, ``auc_before``/``auc_after``, ``test_auc``).
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.monitoring.paths import HISTORY_CHART
from retrain_assets.records import new_materializations
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import REGISTRY, SINGLE, STORE, Scope

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd

SOURCES = {
    "performance": names.PERFORMANCE_REPORT,
    "drift": names.DRIFT_REPORT,
    "estimated": names.ESTIMATED_PERFORMANCE,
    "release": names.PROMOTED_MODEL,
}
MLFLOW_COLUMNS = {
    "start_time": "started",
    "tags.retrain.reason": "reason",
    "metrics.test_auc": "test_auc",
    "metrics.champion_test_auc": "champion_test_auc",
    "tags.dvc_md5": "dvc_md5",
    "params.strategy": "strategy",
    "status": "status",
}
"""MLflow run column -> cycle table column, a binary model's (see :func:`mlflow_columns`)."""


def primary_metric(task: str) -> tuple[str, bool]:
    """``(name, higher_is_better)`` of ``task``'s primary metric (``roc_auc``, ``rmse``, ...)."""
    from retrain_assets.lib.training.tasks import task_metrics

    metric = task_metrics(task)[0]
    return metric.name, metric.higher_is_better


def mlflow_columns(task: str, metric: str) -> dict[str, str]:
    """:data:`MLFLOW_COLUMNS`, plus for a non-binary task its primary metric on the test set
    (``metrics.test_<metric>``) and the champion's on the same rows as ``test_metric`` and
    ``champion_test_metric``, right after the AUC columns."""
    if task == "binary":
        return dict(MLFLOW_COLUMNS)
    columns: dict[str, str] = {}
    for source, column in MLFLOW_COLUMNS.items():
        columns[source] = column
        if column == "champion_test_auc":
            columns[f"metrics.test_{metric}"] = "test_metric"
            columns[f"metrics.champion_test_{metric}"] = "champion_test_metric"
    return columns


def fact(kind: str, day: str | None, latest_day: str | None, meta: dict) -> dict | None:
    """One materialisation as a per-day fact (a release counts on the newest data day)."""
    if kind == "performance" and day:
        live = meta.get("metric_value")  # an older binary report has only its auc
        return {
            "day": day,
            "live_auc": meta.get("auc"),
            "live_metric": meta.get("auc") if live is None else live,
            "champion_version": meta.get("champion_version"),
        }
    if kind == "drift" and day:
        return {"day": day, "drift_share": meta.get("share_drifted")}
    if kind == "estimated" and day:
        keys = ("estimated_auc", "estimated_auc_low", "estimated_auc_high")
        return {"day": day, **{k: meta.get(k) for k in keys}}
    if kind == "release" and latest_day:
        if meta.get("decision") == "promote":
            return {"day": latest_day, "promoted_to": meta.get("new_version")}
        if meta.get("decision") == "rollback":
            return {"day": latest_day, "rolled_back_to": meta.get("new_version")}
    return None


def daily_facts(instance: dg.DagsterInstance, scope: Scope = SINGLE) -> list[dict[str, Any]]:
    """Per-day dicts for lib.release.timeline.history_frame, from Dagster's records."""
    days: list[dict[str, Any]] = []
    latest_day = None
    timeline = sorted(
        (storage_id, kind, day, meta)
        for kind, asset in SOURCES.items()
        for storage_id, day, meta in new_materializations(instance, scope.key(asset), None)
    )
    for _, kind, day, meta in timeline:
        if day is not None:
            latest_day = max(latest_day or day, day)
        found = fact(kind, day, latest_day, meta)
        if found:
            days.append(found)
    retrain_job = scope.name(names.RETRAIN_JOB)
    for record in instance.get_run_records(dg.RunsFilter(job_name=retrain_job)):
        tags = record.dagster_run.tags
        if tags.get(names.DATA_DAY_TAG):
            days.append(
                {"day": tags[names.DATA_DAY_TAG], "retrain_reasons": tags.get(names.REASON_TAG, "")}
            )
    return days


def mlflow_cycles(
    registry: ModelRegistry, experiment: str, columns: dict[str, str] | None = None
) -> "pd.DataFrame":
    """One row per retraining cycle logged to MLflow (newest first), its ``columns`` (MLflow
    column -> table column; default :data:`MLFLOW_COLUMNS`) that the runs have."""
    import mlflow
    import pandas as pd

    found = registry.client().get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    runs = mlflow.search_runs([found.experiment_id], max_results=200, order_by=["start_time DESC"])
    columns = MLFLOW_COLUMNS if columns is None else columns
    present = [c for c in columns if c in runs]
    return runs[present].rename(columns=columns)


def summarise_history(
    cfg: RetrainConfig, instance: dg.DagsterInstance, store: LandingStore, registry: ModelRegistry
) -> dg.MaterializeResult:
    from retrain_assets.lib.release import timeline

    metric, higher_is_better = primary_metric(cfg.task)
    frame = timeline.history_frame(daily_facts(instance, Scope.of(cfg)))
    change = None
    if len(frame):
        change = timeline.degradation_start(frame, "live_metric", higher_is_better=higher_is_better)
    cycles = mlflow_cycles(registry, cfg.mlflow.experiment_name, mlflow_columns(cfg.task, metric))
    metadata: dict[str, dg.RawMetadataValue] = {
        "days": len(frame),
        "metric": metric,
        "history": dg.MetadataValue.md(timeline.to_markdown(frame) if len(frame) else "no data"),
        "degradation_began": change["day"] if change else "not detected",
        "retraining_cycles": len(cycles),
    }
    if change:
        metadata["metric_before"], metadata["metric_after"] = change["before"], change["after"]
        if cfg.task == "binary":
            metadata["auc_before"], metadata["auc_after"] = change["before"], change["after"]
    if len(frame):
        png = store.path_for(*HISTORY_CHART)
        timeline.plot_png(frame, png, change, metric=metric)
        metadata["chart"] = dg.MetadataValue.path(str(png))
    if len(cycles):
        metadata["cycles"] = dg.MetadataValue.md(cycles.head(30).to_markdown(index=False))
    return dg.MaterializeResult(metadata=metadata)


def build_model_history_asset(cfg: RetrainConfig) -> dg.AssetsDefinition:
    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(names.MODEL_HISTORY),
        group_name=scope.group(names.RELEASE_GROUP),
        deps=scope.keys(
            names.PERFORMANCE_REPORT,
            names.ESTIMATED_PERFORMANCE,
            names.DRIFT_REPORT,
            names.PROMOTED_MODEL,
        ),
        required_resource_keys=scope.resource_keys(STORE, REGISTRY),
    )
    def model_history(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Per data day: the live metric of the model's task (binary AUC, multiclass macro AUC,
        regression RMSE), the AUC estimated before labels (binary), champion version, drift
        share, retraining reasons, promotions and rollbacks; the day the live metric began to
        degrade; a chart. Refreshed by every retraining, canary and rollback run (or on
        demand)."""
        res = scope.resources(context)
        return summarise_history(cfg, context.instance, res.store, res.registry)

    return model_history
