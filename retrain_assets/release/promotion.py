"""promoted_model: the only place the `champion` alias moves, forward (promotion) or back
(rollback).

It decides from the registry tags the gates and the canary wrote on the version (a blocking check
stops later steps only in its own run). Before the alias moves, the version's artifacts are
checked against the sha256 recorded at registration. Materialising it again changes nothing:
with no new challenger the decision is "keep" and no alias or tag is written.
"""

from __future__ import annotations

import datetime as dt
import getpass

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.release.errors import checked, refuse
from retrain_assets.resources.mlflow import mlflow_errors
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.run_config import PromotionConfig


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def roll_back(
    registry: ModelRegistry, config: PromotionConfig, who: str, run_id: str
) -> dg.MaterializeResult:
    """Move `champion` back to the version the current champion replaced."""
    from retrain_assets.lib.release.promotion import PREVIOUS_TAG

    champion = registry.alias_version(names.CHAMPION)
    if champion is None:
        raise refuse("no champion to roll back")
    previous = registry.version_tags(champion).get(PREVIOUS_TAG)
    if not previous:
        raise refuse(f"champion v{champion} records no previous champion")
    checked(registry, previous)
    registry.set_alias(names.CHAMPION, previous)
    registry.delete_alias(names.PREVIOUS)
    reason = config.reason or "unspecified"
    registry.tag_version(
        champion,
        {
            "rolled_back": "true",
            "rollback.reason": reason,
            "rollback.by": who,
            "rollback.at": now(),
            "rollback.dagster_run_id": run_id,
        },
    )
    return dg.MaterializeResult(
        metadata={
            "decision": "rollback",
            "reason": reason,
            "requested_by": who,
            "old_version": champion,
            "new_version": previous,
            "champion_version": previous,
            "aliases_changed": True,
        }
    )


def promote(
    cfg: RetrainConfig,
    registry: ModelRegistry,
    champion: str | None,
    challenger: str,
    tags: dict[str, str],
    run_id: str,
) -> dict[str, dg.RawMetadataValue]:
    """Move `champion` to the challenger (checked first); what the move adds to the metadata.
    `tags` are the challenger's registry tags (its gate and canary verdicts)."""
    from retrain_assets.lib.release.promotion import PREVIOUS_TAG

    metadata: dict[str, dg.RawMetadataValue] = {"artifact_sha256": checked(registry, challenger)}
    registry.set_alias(names.CHAMPION, challenger)
    registry.delete_alias(names.CHALLENGER)
    promoted = {"promoted_at": now(), "promoted_by_run": run_id}
    if champion:
        promoted[PREVIOUS_TAG] = champion
        if cfg.guardrail.enabled:  # scored in the shadow until the guardrail is done
            registry.set_alias(names.PREVIOUS, champion)
    registry.tag_version(challenger, promoted)
    if tags.get("champion_test_auc"):  # both scored on the candidate's test set
        gain = float(tags["test_auc"]) - float(tags["champion_test_auc"])
        metadata["auc_difference_on_test"] = gain
    elif tags.get("champion_test_metric"):  # a multiclass or regression candidate
        metadata[names.METRIC_TAG] = tags.get(names.METRIC_TAG, "")
        metadata["metric_on_test"] = float(tags[names.TEST_METRIC_TAG])
        metadata["champion_metric_on_test"] = float(tags["champion_test_metric"])
    if tags.get("canary.difference"):
        key = "auc_difference_live" if cfg.task == "binary" else "loss_difference_live"
        metadata[key] = float(tags["canary.difference"])
    return metadata


def decide_and_move(
    cfg: RetrainConfig, registry: ModelRegistry, run_id: str
) -> dg.MaterializeResult:
    """Promote, keep or drop the challenger, from the verdicts recorded on it."""
    from retrain_assets.lib.release import promotion

    champion = registry.alias_version(names.CHAMPION)
    challenger = registry.alias_version(names.CHALLENGER)
    tags = registry.version_tags(challenger) if challenger else {}
    try:
        decision = promotion.decide(champion, challenger, tags, cfg.canary.mode)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    metadata: dict[str, dg.RawMetadataValue] = {
        "decision": decision.action,
        "reason": decision.reason,
        "old_version": champion or "none",
        "challenger_version": challenger or "none",
        # keep = this materialisation wrote nothing (promoting twice is a no-op)
        "aliases_changed": decision.action != "keep",
    }
    new = champion
    if decision.action == "promote" and challenger is not None:
        metadata.update(promote(cfg, registry, champion, challenger, tags, run_id))
        new = challenger
    elif decision.action == "drop":
        registry.delete_alias(names.CHALLENGER)
    metadata["new_version"] = new or "none"
    metadata["champion_version"] = new or "none"
    if new:
        metadata["mlflow_model"] = dg.MetadataValue.url(registry.model_url(new))
    return dg.MaterializeResult(metadata=metadata)


def move_champion(
    cfg: RetrainConfig, config: PromotionConfig, registry: ModelRegistry, run_id: str
) -> dg.MaterializeResult:
    with mlflow_errors(cfg.tracking_uri):
        if config.rollback:
            who = config.requested_by or getpass.getuser()
            return roll_back(registry, config, who, run_id)
        return decide_and_move(cfg, registry, run_id)
