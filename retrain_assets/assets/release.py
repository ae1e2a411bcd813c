"""Release: the canary (shadow A/B on live labels) and the champion alias.

`promoted_model` is the only place the `champion` alias moves, forward (promotion) or back
(rollback), and it decides from the registry tags the gates and the canary wrote on the version.
Before the alias moves, the version's artifacts are checked against the sha256 recorded when it was
registered; a difference refuses the move. Materialising it again changes nothing: with no new
challenger the decision is "keep" and no alias or tag is written.

Both assets talk to MLflow: an unreachable tracking server is retried with exponential back-off,
then fails with an error naming the tracking URI; refusals fail at once.
"""

import datetime as dt
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.resources.mlflow import mlflow_errors, retry_policy
from retrain_assets.resources.registry import ModelRegistry
from retrain_assets.resources.storage import LandingStore

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous_champion"
CANARY_CHECK = "canary_evaluation_non_inferior"


class PromotionConfig(dg.Config):
    """rollback=True moves `champion` back to the version it replaced (the rollback job)."""

    rollback: bool = False
    reason: str = ""
    requested_by: str = ""


def shadow_rows(
    cfg: RetrainConfig, store: LandingStore, challenger: str, after: str | None = None
) -> "pd.DataFrame":
    """Labelled rows that both the champion and this challenger scored (same rows, paired).

    ``after`` is the newest day of the challenger's training data (its ``data_until`` tag): only
    prediction files and label batches of later days are read. The challenger cannot have scored
    an earlier day's batch unless that batch was re-ingested after it was registered, and those
    rows would be rows it may have been trained on, so they are no fair test anyway. Without
    it, every day is read, which grows with history (a 1,000-day run read 2,000 files per canary
    evaluation)."""
    import pandas as pd

    def later(day: str) -> bool:
        return after is None or day > after

    folder = Path(store.workdir) / "monitoring" / "predictions"
    frames = []
    for path in sorted(folder.glob("*.parquet")):
        if not later(path.stem):
            continue
        frame = pd.read_parquet(path)
        if "challenger_version" in frame:
            frames.append(frame[frame["challenger_version"].astype(str) == challenger])
    label_days = [d for d in store.batch_days("labels") if later(d)]
    if not frames or not label_days:
        return pd.DataFrame(columns=["y", "champion_score", "challenger_score"])
    scored = pd.concat(frames, ignore_index=True)
    labels = pd.concat([store.read_batch("labels", d) for d in label_days], ignore_index=True)
    labels = labels.drop_duplicates(subset=[cfg.data.id_column], keep="last")
    joined = scored.merge(labels, on=cfg.data.id_column, how="inner")
    return joined.rename(columns={cfg.data.target_column: "y"})


def _refuse(message: str) -> dg.Failure:
    """A decision, not an outage: fails the step without retrying it."""
    return dg.Failure(message, allow_retries=False)


def _checked(registry: ModelRegistry, version: str) -> str:
    """The version's artifact hash, after checking its artifacts against it."""
    from retrain_assets.lib.release.model_store import ArtifactIntegrityError

    try:
        return registry.verify(version)
    except ArtifactIntegrityError as exc:
        raise _refuse(f"not moving '{CHAMPION}' to v{version}: {exc}") from None


def build_release_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    canary = cfg.canary
    retries = retry_policy(cfg.mlflow.retries, cfg.mlflow.retry_delay_seconds)

    @dg.asset(
        group_name="release",
        retry_policy=retries,
        check_specs=[
            dg.AssetCheckSpec(
                CANARY_CHECK,
                asset="canary_evaluation",
                blocking=True,
                description=f"On the same live labelled rows, the challenger's AUC is not worse "
                f"than the champion's by more than {canary.margin} ({canary.method}, one-sided "
                f"{canary.confidence:.0%}), over at least {canary.min_rows} rows.",
            )
        ],
    )
    def canary_evaluation(store: LandingStore, registry: ModelRegistry):
        """The challenger against the champion on live labelled rows both of them scored.

        Materialised by canary_sensor once enough labelled shadow rows exist."""
        from retrain_assets.lib.release.canary import CanarySettings, evaluate_canary

        with mlflow_errors(cfg.tracking_uri):
            challenger = registry.alias_version(CHALLENGER)
            champion = registry.alias_version(CHAMPION)
            if challenger is None or champion is None:
                raise _refuse("no challenger (or no champion) to compare")
            trained_until = registry.version_tags(challenger).get("data_until")
            rows = shadow_rows(cfg, store, challenger, after=trained_until)
            result = evaluate_canary(
                rows["y"].to_numpy(),
                rows["champion_score"].to_numpy(),
                rows["challenger_score"].to_numpy(),
                CanarySettings(
                    min_rows=canary.min_rows, margin=canary.margin, confidence=canary.confidence
                ),
                method=canary.method,
            )
            verdict = "passed" if result.non_inferior else "failed"
            if not result.non_inferior:
                # The blocking check below stops this run before promoted_model: drop it here, so
                # shadow scoring stops and the triggers may start a new cycle.
                registry.delete_alias(CHALLENGER)
            registry.tag_version(
                challenger,
                {
                    "canary": verdict,
                    "canary.difference": f"{result.difference:.6f}",
                    "canary.ci_low": f"{result.ci_low:.6f}",
                    "canary.n_rows": str(result.n_rows),
                    "canary.champion_version": champion,
                },
            )
            metadata = {**result.to_metadata(), "challenger_version": challenger}
            yield dg.MaterializeResult(metadata={**metadata, "champion_version": champion})
            yield dg.AssetCheckResult(
                check_name=CANARY_CHECK,
                passed=bool(result.non_inferior),
                description=result.reason,
                metadata={**metadata, "margin": canary.margin, "min_rows": canary.min_rows},
            )

    @dg.asset(
        group_name="release",
        kinds={"mlflow"},
        deps=["candidate_model", "canary_evaluation"],
        retry_policy=retries,
    )
    def promoted_model(
        context: dg.AssetExecutionContext,
        config: PromotionConfig,
        registry: ModelRegistry,
    ) -> dg.MaterializeResult:
        """The model version behind the registry alias `champion`.

        Moves it to the challenger only when the challenger's registry tags show every gate (and,
        in shadow mode, the canary) passed; moves it back on a rollback. Refreshed at the end of
        every retraining, canary and rollback run."""
        from retrain_assets.lib.release import promotion

        with mlflow_errors(cfg.tracking_uri):
            champion = registry.alias_version(CHAMPION)
            who = config.requested_by or getpass.getuser()
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            if config.rollback:
                if champion is None:
                    raise _refuse("no champion to roll back")
                previous = registry.version_tags(champion).get(promotion.PREVIOUS_TAG)
                if not previous:
                    raise _refuse(f"champion v{champion} records no previous champion")
                _checked(registry, previous)
                registry.set_alias(CHAMPION, previous)
                registry.delete_alias(PREVIOUS)
                registry.tag_version(
                    champion,
                    {
                        "rolled_back": "true",
                        "rollback.reason": config.reason or "unspecified",
                        "rollback.by": who,
                        "rollback.at": stamp,
                        "rollback.dagster_run_id": context.run_id,
                    },
                )
                return dg.MaterializeResult(
                    metadata={
                        "decision": "rollback",
                        "reason": config.reason or "unspecified",
                        "requested_by": who,
                        "old_version": champion,
                        "new_version": previous,
                        "champion_version": previous,
                        "aliases_changed": True,
                    }
                )
            challenger = registry.alias_version(CHALLENGER)
            tags = registry.version_tags(challenger) if challenger else {}
            try:
                decision = promotion.decide(champion, challenger, tags, cfg.canary.mode)
            except ValueError as exc:
                raise _refuse(str(exc)) from None
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
                metadata["artifact_sha256"] = _checked(registry, challenger)
                registry.set_alias(CHAMPION, challenger)
                registry.delete_alias(CHALLENGER)
                promoted = {"promoted_at": stamp, "promoted_by_run": context.run_id}
                if champion:
                    promoted[promotion.PREVIOUS_TAG] = champion
                    if cfg.guardrail.enabled:  # scored in the shadow until the guardrail is done
                        registry.set_alias(PREVIOUS, champion)
                registry.tag_version(challenger, promoted)
                new = challenger
                if tags.get("champion_test_auc"):  # both scored on the candidate's test set
                    gain = float(tags["test_auc"]) - float(tags["champion_test_auc"])
                    metadata["auc_difference_on_test"] = gain
                if tags.get("canary.difference"):
                    metadata["auc_difference_live"] = float(tags["canary.difference"])
            elif decision.action == "drop":
                registry.delete_alias(CHALLENGER)
            metadata["new_version"] = new or "none"
            metadata["champion_version"] = new or "none"
            if new:
                metadata["mlflow_model"] = dg.MetadataValue.url(registry.model_url(new))
            return dg.MaterializeResult(metadata=metadata)

    return [canary_evaluation, promoted_model]
