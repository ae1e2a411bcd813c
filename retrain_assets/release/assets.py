"""Release: the canary (shadow A/B on live labels) and the champion alias.

Both talk to MLflow: an unreachable tracking server is retried with exponential back-off, then
fails naming the tracking URI; refusals (release/errors.py) fail at once.
"""

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.release.canary import evaluate_challenger
from retrain_assets.release.promotion import move_champion
from retrain_assets.resources.mlflow import retry_policy
from retrain_assets.run_config import PromotionConfig
from retrain_assets.scope import REGISTRY, STORE, Scope


def canary_text(cfg: RetrainConfig) -> str:
    canary = cfg.canary
    if cfg.task == "binary":
        return (
            f"On the same live labelled rows, the challenger's AUC is not worse than the "
            f"champion's by more than {canary.margin} ({canary.method}, one-sided "
            f"{canary.confidence:.0%}), over at least {canary.min_rows} rows."
        )
    loss = "log loss" if cfg.task == "multiclass" else "squared error"
    return (
        f"On the same live labelled rows, the challenger's mean per-row {loss} is not worse "
        f"than the champion's by {canary.margin:.0%} of it or more (paired t-test, one-sided "
        f"{canary.confidence:.0%}), over at least {canary.min_rows} rows."
    )


def canary_check_spec(cfg: RetrainConfig) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        names.CANARY_CHECK,
        asset=Scope.of(cfg).key(names.CANARY_EVALUATION),
        blocking=True,
        description=canary_text(cfg),
    )


def build_release_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    retries = retry_policy(cfg.mlflow.retries, cfg.mlflow.retry_delay_seconds)
    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(names.CANARY_EVALUATION),
        group_name=scope.group(names.RELEASE_GROUP),
        retry_policy=retries,
        check_specs=[canary_check_spec(cfg)],
        required_resource_keys=scope.resource_keys(STORE, REGISTRY),
    )
    def canary_evaluation(context: dg.AssetExecutionContext):
        """The challenger against the champion on live labelled rows both of them scored.

        Materialised by canary_sensor once enough labelled shadow rows exist."""
        res = scope.resources(context)
        yield from evaluate_challenger(cfg, res.store, res.registry)

    @dg.asset(
        key=scope.key(names.PROMOTED_MODEL),
        group_name=scope.group(names.RELEASE_GROUP),
        kinds={"mlflow"},
        deps=scope.keys(names.CANDIDATE_MODEL, names.CANARY_EVALUATION),
        retry_policy=retries,
        required_resource_keys=scope.resource_keys(REGISTRY),
    )
    def promoted_model(
        context: dg.AssetExecutionContext, config: PromotionConfig
    ) -> dg.MaterializeResult:
        """The model version behind the registry alias `champion`.

        Moves it to the challenger only when the challenger's registry tags show every gate (and,
        in shadow mode, the canary) passed; moves it back on a rollback. Refreshed at the end of
        every retraining, canary and rollback run."""
        return move_champion(cfg, config, scope.resources(context).registry, context.run_id)

    return [canary_evaluation, promoted_model]
