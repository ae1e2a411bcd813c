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
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry


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


def report_performance(
    cfg: RetrainConfig, store: LandingStore, registry: ModelRegistry, day: str
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    champion = registry.alias_version(names.CHAMPION)
    if champion is None:
        raise dg.Failure(f"no '{names.CHAMPION}' alias on {registry.registered_name}")
    baseline = registry.version_tags(champion).get("test_auc")
    report = evaluate_day(
        store,
        cfg,
        day,
        champion,
        float(baseline) if baseline else None,
        registry.calibrator(champion).auc_se,
    )
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
        }
    )
    yield dg.AssetCheckResult(
        check_name=names.PERFORMANCE_CHECK,
        passed=not (verdict.degraded or verdict.concept_drift),
        severity=dg.AssetCheckSeverity.WARN,
        description=verdict.reason,
        metadata={
            "auc": nan_if_none(verdict.auc),
            "baseline_auc": nan_if_none(verdict.baseline_auc),
            "relative_drop": cfg.performance.relative_drop,
            "absolute_floor": cfg.performance.absolute_floor,
            "n_labels": verdict.n_labels,
        },
    )


def build_performance_asset(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    perf_check = dg.AssetCheckSpec(
        names.PERFORMANCE_CHECK,
        asset=names.PERFORMANCE_REPORT,
        partitions_def=daily,
        description=f"Live AUC of the champion on the day's labels stays above "
        f"{1 - cfg.performance.relative_drop:.2f} x its test AUC and above "
        f"{cfg.performance.absolute_floor}; no concept drift.",
    )

    @dg.asset(
        name=names.PERFORMANCE_REPORT,
        group_name=names.MONITORING_GROUP,
        partitions_def=daily,
        deps=[names.LABEL_BATCH, names.PREDICTIONS],
        check_specs=[perf_check],
    )
    def performance_report(
        context: dg.AssetExecutionContext, store: LandingStore, registry: ModelRegistry
    ):
        """The champion's live AUC and log loss on the labels that arrived this day (pooled with
        earlier days when too few), the degradation and concept-drift verdicts.

        Materialised with each day's label batch; performance_sensor reads its verdicts."""
        yield from report_performance(cfg, store, registry, context.partition_key)

    return performance_report
