"""predictions[day]: the day's batch scored by the champion and, in its shadow, by the challenger
(and, while the guardrail watches a promotion, by the previous champion).

Each model's score is stored with its calibrated probability (``<alias>_probability``, the
version's calibrator applied), which estimated_performance reads. With ``calibration.serve`` the
served score is the calibrated probability itself."""

from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.files import write_parquet
from retrain_assets.monitoring.paths import PREDICTIONS_DIR
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import REGISTRY, STORE, Scope

if TYPE_CHECKING:
    import pandas as pd

SCORED_BY = (names.CHAMPION, names.CHALLENGER, names.PREVIOUS)


def task_columns(task: str, alias: str, model: object, features: "pd.DataFrame") -> dict:
    """A multiclass or regression model's stored prediction: the predicted value
    (``<alias>_score``) of a regression; for multiclass the top class's probability as the score,
    every class's probability (``<alias>_proba``, a list per row) and their order
    (``<alias>_classes``, JSON)."""
    import json

    from retrain_assets.lib.training.tasks import model_classes, predict

    prediction = predict(task, model, features)
    if task == "regression":
        return {f"{alias}_score": prediction}
    return {
        f"{alias}_score": prediction.max(axis=1),
        f"{alias}_proba": list(prediction),
        f"{alias}_classes": json.dumps(model_classes(task, model)),
    }


def score_batch(
    cfg: RetrainConfig, store: LandingStore, registry: ModelRegistry, day: str
) -> dg.MaterializeResult:
    import pandas as pd

    batch = store.read_batch("features", day)
    out = pd.DataFrame({cfg.data.id_column: batch[cfg.data.id_column]})
    versions = {}
    for alias in SCORED_BY:
        version = registry.alias_version(alias)
        if version is None:
            if alias == names.CHAMPION:
                raise dg.Failure(f"no '{names.CHAMPION}' alias on {registry.registered_name}")
            continue
        model = registry.load(version)
        if cfg.task == "binary":
            scores = model.predict_proba(batch[cfg.data.features])[:, 1]
            probability = registry.calibrator(version).apply(scores)
            out[f"{alias}_score"] = probability if cfg.calibration.serve else scores
            out[f"{alias}_probability"] = probability
        else:
            out = out.assign(**task_columns(cfg.task, alias, model, batch[cfg.data.features]))
        out[f"{alias}_version"] = version
        versions[alias] = version
    out["day"] = day
    write_parquet(out, store.path_for(*PREDICTIONS_DIR, f"{day}.parquet"))
    metadata: dict[str, dg.RawMetadataValue] = {
        "dagster/row_count": len(out),
        "champion_version": versions[names.CHAMPION],
        "champion_mean_score": float(out["champion_score"].mean()),
        "challenger_version": versions.get(names.CHALLENGER, "none"),
    }
    if names.CHALLENGER in versions:
        metadata["challenger_mean_score"] = float(out["challenger_score"].mean())
    return dg.MaterializeResult(metadata=metadata)


def build_predictions_asset(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(names.PREDICTIONS),
        group_name=scope.group(names.MONITORING_GROUP),
        partitions_def=daily,
        deps=scope.keys(names.FEATURE_BATCH),
        required_resource_keys=scope.resource_keys(STORE, REGISTRY),
    )
    def predictions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One day's batch scored by the champion and, in its shadow, by the challenger.

        Materialised with each day's feature batch; labels are joined to it by id later."""
        res = scope.resources(context)
        return score_batch(cfg, res.store, res.registry, context.partition_key)

    return predictions
