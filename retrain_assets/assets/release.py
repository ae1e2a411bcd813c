"""Release: which registered version serves as the champion."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.lib import registry
from retrain_assets.resources.mlflow import MlflowTracking


def build_release_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    @dg.asset(group_name="release", kinds={"mlflow"})
    def promoted_model(candidate_model: dict, mlflow: MlflowTracking) -> dg.MaterializeResult:
        """The model version behind the registry alias `champion`.

        With no champion yet, the candidate becomes champion. Refreshed at the end of every
        retraining run."""
        name = cfg.model.registered_name
        current = registry.alias_version(name, registry.CHAMPION)
        promoted = current is None
        if promoted:
            registry.set_alias(name, registry.CHAMPION, candidate_model["version"])
        champion = candidate_model["version"] if promoted else current
        return dg.MaterializeResult(
            metadata={
                "champion_version": str(champion),
                "candidate_version": str(candidate_model["version"]),
                "promoted": promoted,
                "decision": "first champion" if promoted else "champion kept",
                "mlflow_model": dg.MetadataValue.url(mlflow.model_url(name, str(champion))),
            }
        )

    return [promoted_model]
