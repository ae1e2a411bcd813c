"""candidate_model: a model fitted on the training set, judged against the champion on the same
test rows by the blocking AUC and latency gates, logged to MLflow (skops) and registered. The
`challenger` alias goes to it only when both gates pass.

A candidate is registered only after its artifacts were written, with their sha256, so a failed
upload or a killed run leaves no half-logged version. The gates' verdicts are written as tags on
the version: promotion (often a later run) trusts those, not this run's checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.resources.mlflow import MlflowTracking, mlflow_errors
from retrain_assets.resources.model_registry import ModelRegistry

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd


def load_champion(registry: ModelRegistry) -> tuple[str | None, Any, dict[str, str]]:
    """The champion's version, fitted pipeline and registry tags (None, None, {} without one)."""
    champion = registry.alias_version(names.CHAMPION)
    if champion is None:
        return None, None, {}
    return champion, registry.load(champion), registry.version_tags(champion)


def fit_candidate(cfg: RetrainConfig, rows: pd.DataFrame, strategy: str, champion_model: Any):
    from retrain_assets.lib.training import fitting
    from retrain_assets.lib.training.calibration import CalibrationSettings

    model, calib = cfg.model, cfg.calibration
    settings = CalibrationSettings(calib.method, calib.holdout_share, calib.min_rows)
    return fitting.fit_and_evaluate(
        rows,
        cfg.data.numerical_features,
        cfg.data.categorical_features,
        model.estimator,
        model.params,
        model.random_state,
        strategy=strategy,
        base=champion_model if strategy == "incremental" else None,
        extra_iter=cfg.training.incremental_extra_iter,
        n_threads=model.n_threads,
        calibration=settings if cfg.task == "binary" else None,
        task=cfg.task,
    )


def champion_test_metric(
    cfg: RetrainConfig, champion_model: Any, test: pd.DataFrame
) -> float | None:
    """The champion's primary metric (AUC, macro AUC, RMSE) on the candidate's own test rows:
    the relative gate compares the two."""
    from retrain_assets.lib.training import fitting
    from retrain_assets.lib.training.tasks import task_metrics

    if champion_model is None:
        return None
    y = test[fitting.TARGET].to_numpy()
    if cfg.task == "binary":
        scores = fitting.score(champion_model, test[cfg.data.features])
        return fitting.evaluate(y, scores)[0]
    metrics, _ = fitting.task_scores(cfg.task, champion_model, test[cfg.data.features], y)
    return metrics[task_metrics(cfg.task)[0].name]


def judge(
    cfg: RetrainConfig, fit: Any, champion_auc: float | None, model_uri: str, test: pd.DataFrame
) -> list:
    """[metric gate, latency gate] results for a registered candidate: its primary metric
    against the champion's on the same test rows (AUC for binary), and p95 latency."""
    from retrain_assets.lib.release import model_gates

    gates = cfg.gates
    latencies = model_gates.pyfunc_latency_ms(
        model_uri, test[cfg.data.features], gates.latency_samples
    )
    return [
        model_gates.metric_gate(
            cfg.task, fit.test_metric, champion_auc, ratio=cfg.gate_ratio, floor=cfg.gate_floor
        ),
        model_gates.latency_gate(latencies, max_p95_ms=gates.max_p95_latency_ms),
    ]


def record_verdicts(
    registry: ModelRegistry, version: str, results: list, champion: str | None, auc: float | None
) -> bool:
    """Tag the version with each gate's verdict (and the champion it was judged against); the
    `challenger` alias when every gate passed. True when it did."""
    for result in results:
        registry.tag_version(version, result.registry_tags())
    if auc is not None:
        key = "champion_test_auc" if results[0].gate == "auc" else "champion_test_metric"
        registry.tag_version(version, {key: f"{auc:.6f}", "champion_version": str(champion)})
    passed = all(r.passed for r in results)
    if passed:
        registry.set_alias(names.CHALLENGER, version)
    return passed


def regime_tags(run_tags: Mapping[str, str], champion_tags: Mapping[str, str]) -> dict[str, str]:
    """The regime the candidate is trained for: where a drift retraining's shift began, else the
    champion's (a later retraining stays in the same regime until the next shift)."""
    since = run_tags.get(names.REGIME_START_TAG) or champion_tags.get(names.REFERENCE_SINCE)
    return {names.REFERENCE_SINCE: since} if since else {}


def register(
    cfg: RetrainConfig,
    context: dg.AssetExecutionContext,
    training_dataset: dict,
    fit: Any,
    test: pd.DataFrame,
    reason: str,
    extra_tags: dict[str, str],
) -> Any:
    """Log the fitted pipeline to this cycle's MLflow run and register it (tags written with it)."""
    from retrain_assets.lib.release import model_store

    return model_store.log_and_register(
        fit.pipeline,
        registered_name=cfg.model.registered_name,
        input_example=test[cfg.data.features].head(5),
        tags={
            "dvc_md5": training_dataset["md5"],
            **task_tags(cfg, fit),
            "dagster_run_id": context.run_id,
            "retrain_reason": reason,
            "strategy": training_dataset["strategy"],
            "data_until": training_dataset["data_until"],
            **extra_tags,
        },
    )


def task_tags(cfg: RetrainConfig, fit: Any) -> dict[str, str]:
    """The version's task, metric and test figure (binary versions keep `test_auc` too), and a
    multiclass version's classes."""
    import json

    from retrain_assets.lib.training.tasks import model_classes

    tags = {
        names.TASK_TAG: cfg.task,
        names.METRIC_TAG: fit.metric,
        names.TEST_METRIC_TAG: f"{fit.test_metric:.6f}",
    }
    if cfg.task == "binary":
        tags["test_auc"] = f"{fit.test_auc:.6f}"
    classes = model_classes(cfg.task, fit.pipeline)
    if classes is not None:
        tags[names.CLASSES_TAG] = json.dumps(classes)
    return tags


def log_cycle(cfg: RetrainConfig, mlflow: MlflowTracking, run_tags: Mapping[str, str]) -> str:
    """The model's parameters and the cycle's reason and evidence on its MLflow run."""
    reason = run_tags.get(names.REASON_TAG, "manual")
    mlflow.tracker.log_params(
        {
            "task": cfg.task,
            "estimator": cfg.model.estimator,
            "test_days": cfg.model.test_days,
            **{f"model.{k}": v for k, v in cfg.model.params.items()},
        }
    )
    mlflow.tracker.set_tags(
        {"retrain.reason": reason, "retrain.evidence": run_tags.get(names.EVIDENCE_TAG, "")}
    )
    return reason


def candidate_metrics(fit: Any, latency_ms: float, champion_auc: float | None) -> dict[str, float]:
    """The cycle's MLflow metrics: every test metric of the task (binary: test_auc and
    test_log_loss), the champion's primary metric on the same rows, time, rows and latency."""
    champion_key = "champion_test_auc" if fit.task == "binary" else f"champion_test_{fit.metric}"
    tested = {"test_auc": fit.test_auc, "test_log_loss": fit.test_log_loss}
    if fit.task != "binary":
        tested = {f"test_{name}": value for name, value in (fit.metrics or {}).items()}
    return {
        **tested,
        "training_time_s": fit.training_seconds,
        "train_rows": fit.train_rows,
        "test_rows": fit.test_rows,
        "p95_latency_ms": latency_ms,
        **({champion_key: champion_auc} if champion_auc is not None else {}),
        **(fit.calibration.metrics if fit.calibration is not None else {}),
    }


def candidate_output(
    mlflow: MlflowTracking,
    logged: Any,
    fit: Any,
    results: list,
    context: tuple[dict, str | None, float | None, str, bool],
) -> dg.Output:
    """The candidate_model value and the metadata a person reads on its materialisation."""
    training_dataset, champion, champion_auc, reason, passed = context
    value = {
        "name": logged.name,
        "version": logged.version,
        "run_id": logged.run_id,
        "test_auc": fit.test_auc,
        "metric": fit.metric,
        "test_metric": fit.test_metric,
        "champion_version": champion,
        "champion_auc": champion_auc,
        "dvc_md5": training_dataset["md5"],
        "gated": passed,
    }
    return dg.Output(
        value,
        metadata={
            "model_version": logged.version,
            **candidate_figures(fit, champion_auc),
            "p95_latency_ms": results[1].value,
            "training_time_s": fit.training_seconds,
            "strategy": training_dataset["strategy"],
            "dvc_md5": training_dataset["md5"],
            "artifact_sha256": logged.artifact_sha256,
            "retrain_reason": reason,
            "challenger": passed,
            "mlflow_run": dg.MetadataValue.url(mlflow.run_url(logged.run_id)),
            "mlflow_model": dg.MetadataValue.url(mlflow.model_url(logged.name, logged.version)),
        },
    )


def candidate_figures(fit: Any, champion: float | None) -> dict[str, Any]:
    """The candidate's test figures for its materialisation: the task, the primary metric (and
    the champion's on the same rows), every test metric; binary keeps its AUC keys."""
    nan = float("nan")
    figures: dict[str, Any] = {
        "task": fit.task,
        "metric": fit.metric,
        "test_metric": fit.test_metric,
        "champion_test_metric": champion if champion is not None else nan,
    }
    if fit.task == "binary":
        figures.update(
            test_auc=fit.test_auc,
            champion_test_auc=champion if champion is not None else nan,
            test_log_loss=fit.test_log_loss,
            calibration_ece=fit.calibration.test_ece if fit.calibration is not None else nan,
        )
    else:
        figures.update({f"test_{name}": value for name, value in (fit.metrics or {}).items()})
    return figures


def train_candidate(
    cfg: RetrainConfig,
    context: dg.AssetExecutionContext,
    training_dataset: dict,
    mlflow: MlflowTracking,
    registry: ModelRegistry,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    import pandas as pd

    from retrain_assets.lib.training import fitting
    from retrain_assets.training.calibration import calibration_check, log_calibrator

    with mlflow_errors(cfg.tracking_uri):
        rows = pd.read_parquet(training_dataset["path"])
        champion, champion_model, champion_tags = load_champion(registry)
        fit = fit_candidate(cfg, rows, training_dataset["strategy"], champion_model)
        test = rows[rows[fitting.SPLIT] == "test"]
        champion_auc = champion_test_metric(cfg, champion_model, test)
        reason = log_cycle(cfg, mlflow, context.run.tags)
        tags = {
            **regime_tags(context.run.tags, champion_tags),
            **(log_calibrator(cfg, mlflow, fit, test) if fit.calibration is not None else {}),
        }
        logged = register(cfg, context, training_dataset, fit, test, reason, tags)
        results = judge(cfg, fit, champion_auc, logged.model_uri, test)
        passed = record_verdicts(registry, logged.version, results, champion, champion_auc)
        metrics = candidate_metrics(fit, results[1].value, champion_auc)
        mlflow.tracker.log_metrics(metrics)
        yield candidate_output(
            mlflow, logged, fit, results, (training_dataset, champion, champion_auc, reason, passed)
        )
        checks = (names.model_gate_check(cfg.task), names.LATENCY_GATE)
        for name, result in zip(checks, results, strict=True):
            yield dg.AssetCheckResult(
                check_name=name,
                passed=result.passed,
                description=result.detail,
                metadata={**result.to_metadata(), "model_version": logged.version},
            )
        if cfg.task == "binary":
            yield calibration_check(cfg, fit, logged.version)
