"""Monitoring: the reference profile, daily drift reports, shadow-aware predictions and live
performance once labels arrive. The maths lives in lib/ (drift, performance, concept)."""

import json
from pathlib import Path

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.registry import ModelRegistry
from retrain_assets.resources.storage import LandingStore, write_parquet_atomic

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"
PROFILE_DIR = ("monitoring", "reference_profile")
REFERENCE_SAMPLE = ("monitoring", "reference_sample.parquet")


def write_json_atomic(payload: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(path)


def drift_settings(cfg: RetrainConfig):  # -> lib.drift.DriftSettings (imported lazily)
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


def build_monitor_assets(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    data = cfg.data

    @dg.asset(group_name="monitoring", deps=["reference_dataset", "promoted_model"])
    def reference_profile(
        store: LandingStore, dvc: DvcRepository, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        """What "normal" looks like: the champion's training set, binned once for the drift engine.

        Built from the reference set until a champion exists; rebuilt by every retraining run."""
        import pandas as pd

        from retrain_assets.lib.drift.profile import ReferenceProfile

        champion = registry.alias_version(CHAMPION)
        if champion is None:
            frame, source, md5 = store.read_reference(), "reference_dataset (no champion yet)", ""
        else:
            md5 = registry.version_tags(champion).get("dvc_md5", "")
            frame = pd.read_parquet(dvc.cached(md5))
            source = f"training set of champion v{champion}"
        profile = ReferenceProfile.fit(
            frame, data.numerical_features, data.categorical_features, drift_settings(cfg)
        )
        profile.save(store.path_for(*PROFILE_DIR))
        sample = frame[data.features].sample(
            n=min(len(frame), cfg.drift.report_max_rows), random_state=0
        )
        write_parquet_atomic(sample, store.path_for(*REFERENCE_SAMPLE))
        return dg.MaterializeResult(
            metadata={
                "source": source,
                "champion_version": champion or "none",
                "dvc_md5": md5,
                "dagster/row_count": len(frame),
                "columns": len(data.features),
            }
        )

    drift_check = dg.AssetCheckSpec(
        "drift_report_within_threshold",
        asset="drift_report",
        partitions_def=daily,
        description=f"The day's batch does not drift from the reference profile (share of "
        f"drifted columns < {cfg.drift.drift_share:.0%}, no key feature drifted; column drift: "
        f"PSI > {cfg.drift.psi_threshold} or a corrected KS/chi² test with a material effect).",
    )

    @dg.asset(
        group_name="monitoring",
        partitions_def=daily,
        deps=["feature_batch", "reference_profile"],
        check_specs=[drift_check],
    )
    def drift_report(context: dg.AssetExecutionContext, store: LandingStore):
        """How far one day's batch moved from the reference profile, column by column.

        Materialised with each day's feature batch; drift_sensor reads its verdicts."""
        import pandas as pd

        from retrain_assets.lib.drift.profile import ReferenceProfile

        day = context.partition_key
        batch = store.read_batch("features", day)
        result = ReferenceProfile.load(store.path_for(*PROFILE_DIR)).compare(batch)
        summary = {
            "day": day,
            "drifted": bool(result.drifted),
            "share_drifted": float(result.share_drifted),
            "max_psi": float(result.max_psi),
            "drifted_columns": list(result.drifted_columns),
            "evidence": result.evidence(),
        }
        write_json_atomic(summary, store.path_for("monitoring", "drift", f"{day}.json"))
        metadata: dict[str, dg.RawMetadataValue] = {
            "drifted": summary["drifted"],
            "share_drifted": summary["share_drifted"],
            "max_psi": summary["max_psi"],
            "drifted_columns": ", ".join(result.drifted_columns) or "none",
            "evidence": summary["evidence"] or "none",
            "columns": dg.MetadataValue.md(result.to_markdown()),
            "dagster/row_count": len(batch),
        }
        if cfg.drift.html_report:
            from retrain_assets.lib.drift.evidently_report import write_drift_html

            html = store.path_for("monitoring", "drift", f"{day}.html")
            write_drift_html(
                pd.read_parquet(store.path_for(*REFERENCE_SAMPLE)),
                batch,
                data.numerical_features,
                data.categorical_features,
                html,
                psi_threshold=cfg.drift.psi_threshold,
                max_rows=cfg.drift.report_max_rows,
            )
            metadata["evidently_report"] = dg.MetadataValue.path(str(html))
        yield dg.MaterializeResult(metadata=metadata)
        yield dg.AssetCheckResult(
            check_name="drift_report_within_threshold",
            passed=not result.drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=summary["evidence"] if result.drifted else "no drift",
            metadata={
                "share_drifted": summary["share_drifted"],
                "drift_share_threshold": cfg.drift.drift_share,
                "max_psi": summary["max_psi"],
                "psi_threshold": cfg.drift.psi_threshold,
                "drifted_columns": metadata["drifted_columns"],
            },
        )

    @dg.asset(group_name="monitoring", partitions_def=daily, deps=["feature_batch"])
    def predictions(
        context: dg.AssetExecutionContext, store: LandingStore, registry: ModelRegistry
    ) -> dg.MaterializeResult:
        """One day's batch scored by the champion and, in its shadow, by the challenger.

        Materialised with each day's feature batch; labels are joined to it by id later."""
        import pandas as pd

        day = context.partition_key
        batch = store.read_batch("features", day)
        out = pd.DataFrame({data.id_column: batch[data.id_column]})
        versions = {}
        for alias in (CHAMPION, CHALLENGER, PREVIOUS):
            version = registry.alias_version(alias)
            if version is None:
                if alias == CHAMPION:
                    raise dg.Failure(f"no '{CHAMPION}' alias on {registry.registered_name}")
                continue
            model = registry.load(version)
            out[f"{alias}_score"] = model.predict_proba(batch[data.features])[:, 1]
            out[f"{alias}_version"] = version
            versions[alias] = version
        out["day"] = day
        write_parquet_atomic(out, store.path_for("monitoring", "predictions", f"{day}.parquet"))
        metadata: dict[str, dg.RawMetadataValue] = {
            "dagster/row_count": len(out),
            "champion_version": versions[CHAMPION],
            "champion_mean_score": float(out["champion_score"].mean()),
            "challenger_version": versions.get(CHALLENGER, "none"),
        }
        if CHALLENGER in versions:
            metadata["challenger_mean_score"] = float(out["challenger_score"].mean())
        return dg.MaterializeResult(metadata=metadata)

    return [reference_profile, drift_report, predictions]
