"""performance_report[day]: the champion's live AUC on the labels that arrived that day, against
its own test AUC; concept drift; the guardrail's watch over a fresh promotion; and, beside the
realized AUC, the AUC that was estimated for the same rows before their labels came (and the
error).

Only rows scored by the current champion count: after a promotion, labels for rows the previous
champion scored say nothing about the new one (and would re-trigger a retraining for nothing).
"""

from collections.abc import Iterator

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.files import write_json
from retrain_assets.monitoring.live import LiveReport, evaluate_day
from retrain_assets.monitoring.paths import PERFORMANCE_DIR
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import DVC, REGISTRY, STORE, Scope


def guardrail_metadata(report: LiveReport, registry: ModelRegistry) -> dict:
    guard = report.guardrail
    if guard is None:
        return {"guardrail_regression": False}
    if guard.done and not guard.regression:
        registry.delete_alias(names.PREVIOUS)  # watch over: stop scoring the old champion
    return {
        "guardrail_regression": guard.regression,
        "guardrail_reason": guard.reason,
        "guardrail_rows": guard.n_rows,
        "previous_champion_auc": guard.previous_auc,
    }


def nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def check_metadata(cfg: RetrainConfig, verdict) -> dict:
    """The check's figures: the live metric against the champion's test figure (binary keeps
    its AUC keys)."""
    figures = {
        "metric": verdict.metric,
        "live": nan_if_none(verdict.value),
        "relative_drop": cfg.performance.relative_drop,
        "n_labels": verdict.n_labels,
    }
    if cfg.task == "binary":
        figures.update(auc=nan_if_none(verdict.auc), baseline_auc=nan_if_none(verdict.baseline_auc))
    else:
        figures["baseline"] = nan_if_none(verdict.to_metadata().get("baseline_metric"))
    if cfg.task != "regression":
        figures["absolute_floor"] = cfg.performance.absolute_floor
    return figures


def target_drift_metadata(
    cfg: RetrainConfig, store: LandingStore, registry: ModelRegistry, dvc: DvcRepository, day: str
) -> dict:
    """A multiclass or regression model: the day's labels against the champion's training
    labels (class shares by chi-square; the target's distribution by KS), read from the training
    set's DVC version. Empty for binary, or when that version is not in the cache."""
    import pandas as pd

    from retrain_assets.lib.monitoring.performance import target_drift
    from retrain_assets.lib.training.fitting import SPLIT, TARGET

    if cfg.task == "binary":
        return {}
    champion = registry.alias_version(names.CHAMPION)
    md5 = registry.version_tags(champion).get("dvc_md5") if champion else None
    if not md5:
        return {}
    try:
        trained = pd.read_parquet(dvc.cached(md5), columns=[TARGET, SPLIT])
    except FileNotFoundError:
        return {}
    reference = trained.loc[trained[SPLIT] == "train", TARGET]
    labels = store.read_batch("labels", day)[cfg.data.target_column]
    found = target_drift(cfg.task, reference.to_numpy(), labels.to_numpy())
    return {
        "target_drifted": bool(found["drifted"]),
        "target_drift_test": str(found["test"]),
        "target_drift_statistic": found["statistic"],
        "target_drift_p_value": found["p_value"],
        **{k: found[k] for k in ("reference_mean", "window_mean", "cramers_v") if k in found},
    }


def report_performance(
    cfg: RetrainConfig,
    store: LandingStore,
    registry: ModelRegistry,
    day: str,
    dvc: DvcRepository | None = None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    champion = registry.alias_version(names.CHAMPION)
    if champion is None:
        raise dg.Failure(f"no '{names.CHAMPION}' alias on {registry.registered_name}")
    se = registry.calibrator(champion).auc_se if cfg.task == "binary" else 0.0
    report = evaluate_day(store, cfg, day, champion, registry.test_metric(champion), se)
    write_json(report.state, store.path_for(*PERFORMANCE_DIR, f"{day}.json"))
    verdict = report.verdict
    yield dg.MaterializeResult(
        metadata={
            **verdict.to_metadata(),
            "champion_version": champion,
            "unmatched_labels": report.unmatched,
            "scored_by_other_versions": report.other_versions,
            "challenger_version": report.challenger_version or "none",
            "challenger_labelled_rows": report.challenger_rows,
            **guardrail_metadata(report, registry),
            **(report.estimate.to_metadata() if report.estimate else {}),
            **(target_drift_metadata(cfg, store, registry, dvc, day) if dvc else {}),
        }
    )
    yield dg.AssetCheckResult(
        check_name=names.PERFORMANCE_CHECK,
        passed=not (verdict.degraded or verdict.concept_drift),
        severity=dg.AssetCheckSeverity.WARN,
        description=verdict.reason,
        metadata=check_metadata(cfg, verdict),
    )


def performance_check_text(cfg: RetrainConfig) -> str:
    perf = cfg.performance
    if cfg.task == "regression":
        return (
            f"Live RMSE of the champion on the day's labels stays below its test RMSE / "
            f"{1 - perf.relative_drop:.2f}; no concept drift."
        )
    metric = "AUC" if cfg.task == "binary" else "macro one-vs-rest AUC"
    return (
        f"Live {metric} of the champion on the day's labels stays above "
        f"{1 - perf.relative_drop:.2f} x its test {metric} and above {perf.absolute_floor}; no "
        "concept drift."
    )


def build_performance_asset(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    scope = Scope.of(cfg)
    perf_check = dg.AssetCheckSpec(
        names.PERFORMANCE_CHECK,
        asset=scope.key(names.PERFORMANCE_REPORT),
        partitions_def=daily,
        description=performance_check_text(cfg),
    )

    @dg.asset(
        key=scope.key(names.PERFORMANCE_REPORT),
        group_name=scope.group(names.MONITORING_GROUP),
        partitions_def=daily,
        deps=scope.keys(names.LABEL_BATCH, names.PREDICTIONS),
        check_specs=[perf_check],
        required_resource_keys=scope.resource_keys(STORE, REGISTRY, DVC),
    )
    def performance_report(context: dg.AssetExecutionContext):
        """The champion's live AUC and log loss on the labels that arrived this day (pooled with
        earlier days when too few), the degradation and concept-drift verdicts.

        Materialised with each day's label batch; performance_sensor reads its verdicts."""
        res = scope.resources(context)
        yield from report_performance(cfg, res.store, res.registry, context.partition_key, res.dvc)

    return performance_report
