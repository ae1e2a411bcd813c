"""Drift: the reference profile (what "normal" looks like, binned once) and each day's drift
report against it. The statistics live in lib/drift."""

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.files import write_json, write_parquet
from retrain_assets.monitoring.paths import (
    DRIFT_DIR,
    PROFILE_DIR,
    REFERENCE_SAMPLE,
    REFERENCE_SOURCE,
)
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import DVC, REGISTRY, STORE, Scope

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd

REGIME_DAY = "_regime_day"  # the batch day of a regime row (not a feature)


def drift_settings(cfg: RetrainConfig):  # -> lib.drift.profile.DriftSettings (imported lazily)
    from retrain_assets.lib.drift.profile import DriftSettings

    d = cfg.drift
    return DriftSettings(
        psi_threshold=d.psi_threshold,
        psi_significance=d.psi_significance,
        alpha=d.alpha,
        min_ks_effect=d.min_ks_effect,
        min_cramers_v=d.min_cramers_v,
        drift_share=d.drift_share,
        key_features=tuple(d.key_features),
        exact_max_rows=d.exact_max_rows,
    )


def regime_batches(cfg: RetrainConfig, store: LandingStore, since: str) -> "pd.DataFrame | None":
    """The production batches of the regime that began on `since` (its newest
    `drift.reference_days`), or None when they hold fewer than `drift.reference_min_rows` rows."""
    import pandas as pd

    days = [d for d in store.batch_days("features") if d >= since][-cfg.drift.reference_days :]
    frames = [store.read_batch("features", d).assign(**{REGIME_DAY: d}) for d in days]
    if sum(len(f) for f in frames) < cfg.drift.reference_min_rows:
        return None
    return pd.concat(frames, ignore_index=True)


def reference_frame(
    cfg: RetrainConfig, store: LandingStore, dvc: DvcRepository, registry: ModelRegistry
) -> tuple["pd.DataFrame", dict[str, str]]:
    """What drift is judged against, and a description of it: the reference set until a champion
    exists; after a drift retraining, the batches of the new regime; else the champion's
    training set."""
    import pandas as pd

    champion = registry.alias_version(names.CHAMPION)
    if champion is None:
        return store.read_reference(), {"source": "reference_dataset (no champion yet)"}
    tags = registry.version_tags(champion)
    since = tags.get(names.REFERENCE_SINCE)
    regime = regime_batches(cfg, store, since) if since else None
    if regime is not None:
        first, last = regime[REGIME_DAY].min(), regime[REGIME_DAY].max()
        source = f"batches {first}..{last} (the regime since {since}) of champion v{champion}"
        return regime, {
            "source": source,
            "champion_version": champion,
            "window": f"{first}..{last}",
        }
    md5 = tags.get("dvc_md5", "")
    source = f"training set of champion v{champion}"
    return pd.read_parquet(dvc.cached(md5)), {
        "source": source,
        "champion_version": champion,
        "dvc_md5": md5,
    }


def profile_reference(
    cfg: RetrainConfig, store: LandingStore, dvc: DvcRepository, registry: ModelRegistry
) -> dg.MaterializeResult:
    """Profile what drift is judged against (see reference_frame) for the drift engine."""
    from retrain_assets.lib.drift.profile import ReferenceProfile

    data = cfg.data
    frame, described = reference_frame(cfg, store, dvc, registry)
    profile = ReferenceProfile.fit(
        frame, data.numerical_features, data.categorical_features, drift_settings(cfg)
    )
    profile.save(store.path_for(*PROFILE_DIR))
    write_json(described, store.path_for(*PROFILE_DIR, REFERENCE_SOURCE))
    sample = frame[data.features].sample(
        n=min(len(frame), cfg.drift.report_max_rows), random_state=0
    )
    write_parquet(sample, store.path_for(*REFERENCE_SAMPLE))
    return dg.MaterializeResult(
        metadata={
            "source": described["source"],
            "champion_version": described.get("champion_version", "none"),
            "dvc_md5": described.get("dvc_md5", ""),
            "dagster/row_count": len(frame),
            "columns": len(data.features),
        }
    )


def reference_source(store: LandingStore) -> str:
    """How the current profile was built, as profile_reference described it."""
    path = store.path_for(*PROFILE_DIR, REFERENCE_SOURCE)
    return json.loads(path.read_text())["source"] if path.is_file() else "unknown reference"


def evidently_html(cfg: RetrainConfig, store: LandingStore, batch, day: str) -> str:
    """Evidently's HTML drift report of the day (for people; the verdict is ours); its path."""
    import pandas as pd

    from retrain_assets.lib.drift.evidently_report import write_drift_html

    html = store.path_for(*DRIFT_DIR, f"{day}.html")
    write_drift_html(
        pd.read_parquet(store.path_for(*REFERENCE_SAMPLE)),
        batch,
        cfg.data.numerical_features,
        cfg.data.categorical_features,
        html,
        psi_threshold=cfg.drift.psi_threshold,
        max_rows=cfg.drift.report_max_rows,
    )
    return str(html)


def report_drift(
    cfg: RetrainConfig, store: LandingStore, day: str
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Compare one day's batch with the reference profile; the report and its WARN check."""
    from retrain_assets.lib.drift.profile import ReferenceProfile

    batch = store.read_batch("features", day)
    result = ReferenceProfile.load(store.path_for(*PROFILE_DIR)).compare(batch)
    reference = reference_source(store)
    evidence = result.evidence()
    summary: dict[str, Any] = {
        "day": day,
        "drifted": bool(result.drifted),
        "share_drifted": float(result.share_drifted),
        "max_psi": float(result.max_psi),
        "drifted_columns": list(result.drifted_columns),
        "evidence": f"{evidence} (vs {reference})" if evidence else "",
        "reference": reference,
    }
    write_json(summary, store.path_for(*DRIFT_DIR, f"{day}.json"))
    drifted_columns = ", ".join(result.drifted_columns) or "none"
    metadata: dict[str, dg.RawMetadataValue] = {
        "drifted": summary["drifted"],
        "share_drifted": summary["share_drifted"],
        "max_psi": summary["max_psi"],
        "drifted_columns": drifted_columns,
        "evidence": summary["evidence"] or "none",
        "reference": reference,
        "columns": dg.MetadataValue.md(result.to_markdown()),
        "dagster/row_count": len(batch),
    }
    if cfg.drift.html_report:
        metadata["evidently_report"] = dg.MetadataValue.path(evidently_html(cfg, store, batch, day))
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=names.DRIFT_CHECK,
        passed=not result.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=summary["evidence"] if result.drifted else "no drift",
        metadata={
            "share_drifted": summary["share_drifted"],
            "drift_share_threshold": cfg.drift.drift_share,
            "max_psi": summary["max_psi"],
            "psi_threshold": cfg.drift.psi_threshold,
            "drifted_columns": drifted_columns,
        },
    )


def build_drift_assets(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(names.REFERENCE_PROFILE),
        group_name=scope.group(names.MONITORING_GROUP),
        deps=scope.keys(names.REFERENCE_DATASET, names.PROMOTED_MODEL),
        required_resource_keys=scope.resource_keys(STORE, DVC, REGISTRY),
    )
    def reference_profile(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """What "normal" looks like, binned once for the drift engine: the champion's training
        set, or, after a drift retraining, the production batches since the shift began.

        Built from the reference set until a champion exists; rebuilt when the champion moves."""
        res = scope.resources(context)
        return profile_reference(cfg, res.store, res.dvc, res.registry)

    drift_check = dg.AssetCheckSpec(
        names.DRIFT_CHECK,
        asset=scope.key(names.DRIFT_REPORT),
        partitions_def=daily,
        description=f"The day's batch does not drift from the reference profile (share of "
        f"drifted columns < {cfg.drift.drift_share:.0%}, no key feature drifted; column drift: "
        f"PSI > {cfg.drift.psi_threshold} or a corrected KS/chi² test with a material effect).",
    )

    @dg.asset(
        key=scope.key(names.DRIFT_REPORT),
        group_name=scope.group(names.MONITORING_GROUP),
        partitions_def=daily,
        deps=scope.keys(names.FEATURE_BATCH, names.REFERENCE_PROFILE),
        check_specs=[drift_check],
        required_resource_keys=scope.resource_keys(STORE),
    )
    def drift_report(context: dg.AssetExecutionContext):
        """How far one day's batch moved from the reference profile, column by column.

        Materialised with each day's feature batch; drift_sensor reads its verdicts."""
        yield from report_drift(cfg, scope.resources(context).store, context.partition_key)

    return [reference_profile, drift_report]
