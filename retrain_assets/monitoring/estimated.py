"""estimated_performance[day]: the champion's AUC on the day's batch, estimated before any label
arrives from its calibrated probabilities (confidence-based performance estimation), with an
interval; and the challenger's, while one is in the shadow.

The estimate holds while the relation between features and label stays put (covariate shift:
inputs move, the model's probabilities stay right where the new rows land). It cannot see concept
drift, where the same inputs now mean another label: only labels show that (performance_report).
"""

from collections.abc import Iterator

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.files import write_json
from retrain_assets.monitoring.paths import ESTIMATED_DIR, PREDICTIONS_DIR
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import REGISTRY, STORE, Scope


def estimate_scores(cfg: RetrainConfig, frame, alias: str, calibration_se: float):
    """The estimate (lib PerformanceEstimate) from one model's stored scores and calibrated
    probabilities (the score itself for predictions stored before calibration existed); its
    interval holds the calibrator's own noise too."""
    from retrain_assets.lib.monitoring.estimation import estimate_performance

    score = frame[f"{alias}_score"].to_numpy(dtype=float)
    column = f"{alias}_probability"
    probability = frame[column].to_numpy(dtype=float) if column in frame else score
    est = cfg.estimation
    return estimate_performance(
        score,
        probability,
        threshold=est.threshold,
        confidence=est.confidence,
        calibration_se=calibration_se,
    )


def baseline_auc(registry: ModelRegistry, version: str) -> float | None:
    value = registry.version_tags(version).get("test_auc")
    return float(value) if value else None


def judge(cfg: RetrainConfig, estimate, baseline: float | None):  # -> lib EstimatedVerdict
    from retrain_assets.lib.monitoring.impact import judge_estimate

    return judge_estimate(
        estimate,
        baseline,
        relative_drop=cfg.estimation.relative_drop,
        absolute_floor=cfg.performance.absolute_floor,
        min_rows=cfg.estimation.min_rows,
    )


def challenger_metadata(cfg: RetrainConfig, frame, registry: ModelRegistry) -> dict:
    """The shadow challenger's estimate on the same rows (empty without one)."""
    if "challenger_version" not in frame or frame["challenger_version"].isna().all():
        return {}
    shadowed = frame[frame["challenger_version"].notna()]  # every row of a day, or none
    version = str(shadowed["challenger_version"].iloc[0])
    se = registry.calibrator(version).auc_se
    est = estimate_scores(cfg, shadowed, names.CHALLENGER, se)
    return {
        "challenger_version": version,
        "challenger_test_auc": baseline_auc(registry, version),
        **est.to_metadata(prefix="challenger_estimated_"),
    }


def summary_line(est, baseline: float | None, champion: str) -> str:
    """What a person reads first: the estimate, its interval, and the champion's test AUC."""
    if est.auc is None:
        return f"no AUC defined on {est.n_rows} rows"
    test = f"{baseline:.3f}" if baseline is not None else "unknown"
    return (
        f"AUC {est.auc:.3f} [{est.auc_low:.3f}, {est.auc_high:.3f}] ({est.confidence:.0%}, "
        f"{est.n_rows} rows, before labels); champion v{champion} test AUC {test}"
    )


def not_estimated(
    cfg: RetrainConfig, store: LandingStore, day: str, champion: str
) -> dg.MaterializeResult:
    """A multiclass or regression model's batch: no estimate (it reads calibrated P(positive)),
    said in the metadata and the stored JSON, which the triggers read as no verdict."""
    meta = {
        "estimate": f"not estimated: estimation before labels covers binary models; this "
        f"{cfg.task} model is judged when its labels arrive (performance_report)",
        "champion_version": champion,
        "task": cfg.task,
    }
    write_json({"day": day, **meta}, store.path_for(*ESTIMATED_DIR, f"{day}.json"))
    return dg.MaterializeResult(metadata=meta)


def estimate_day(
    cfg: RetrainConfig, store: LandingStore, registry: ModelRegistry, day: str
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    import pandas as pd

    frame = pd.read_parquet(store.path_for(*PREDICTIONS_DIR, f"{day}.parquet"))
    champion = str(frame["champion_version"].iloc[0])
    if cfg.task != "binary":
        yield not_estimated(cfg, store, day, champion)
        return
    baseline = baseline_auc(registry, champion)
    est = estimate_scores(cfg, frame, names.CHAMPION, registry.calibrator(champion).auc_se)
    verdict = judge(cfg, est, baseline)
    method = registry.version_tags(champion).get(names.CALIBRATION_METHOD, "identity")
    calibrated = method != "identity"
    meta = {
        "estimate": summary_line(est, baseline, champion),
        **est.to_metadata(),
        "champion_version": champion,
        "champion_test_auc": baseline,
        "bar": verdict.bar,
        "degraded": verdict.degraded,
        "fell": verdict.fell,
        "calibrated": calibrated,
        "reason": verdict.reason,
        **challenger_metadata(cfg, frame, registry),
    }
    write_json({"day": day, **meta}, store.path_for(*ESTIMATED_DIR, f"{day}.json"))
    yield dg.MaterializeResult(metadata={k: v for k, v in meta.items() if v is not None})
    yield dg.AssetCheckResult(
        check_name=names.ESTIMATION_CHECK,
        passed=not verdict.degraded,
        severity=dg.AssetCheckSeverity.WARN,
        description=verdict.reason
        + ("" if calibrated else f"; v{champion} has no calibrator: its scores are read as-is"),
        metadata={
            k: v
            for k, v in {
                "estimated_auc": est.auc,
                "estimated_auc_high": est.auc_high,
                "bar": verdict.bar,
                "champion_test_auc": baseline,
                "n_rows": est.n_rows,
            }.items()
            if v is not None
        },
    )


def build_estimated_asset(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    est = cfg.estimation
    scope = Scope.of(cfg)
    check = dg.AssetCheckSpec(
        names.ESTIMATION_CHECK,
        asset=scope.key(names.ESTIMATED_PERFORMANCE),
        partitions_def=daily,
        description=f"The champion's estimated AUC on the batch is not significantly below "
        f"{1 - est.relative_drop:.2f} x its test AUC or {cfg.performance.absolute_floor} (the "
        f"upper end of its {est.confidence:.0%} interval stays above). Warns only; the estimate "
        "cannot see concept drift.",
    )

    @dg.asset(
        key=scope.key(names.ESTIMATED_PERFORMANCE),
        group_name=scope.group(names.MONITORING_GROUP),
        partitions_def=daily,
        deps=scope.keys(names.PREDICTIONS),
        check_specs=[check] if cfg.task == "binary" else [],
        required_resource_keys=scope.resource_keys(STORE, REGISTRY),
    )
    def estimated_performance(context: dg.AssetExecutionContext):
        """The champion's expected AUC, accuracy and log loss on the day's batch, from its
        calibrated probabilities, before any label; the challenger's while in the shadow.

        Materialised with each day's feature batch; performance_sensor may retrain on it."""
        res = scope.resources(context)
        yield from estimate_day(cfg, res.store, res.registry, context.partition_key)

    return estimated_performance
