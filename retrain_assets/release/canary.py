"""canary_evaluation: the challenger against the champion on live labelled rows both of them
scored (a shadow A/B), decided by a paired non-inferiority test (lib/release/canary.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.monitoring.paths import PREDICTIONS_DIR
from retrain_assets.release.errors import refuse
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.mlflow import mlflow_errors
from retrain_assets.resources.model_registry import ModelRegistry

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd


def shadow_rows(
    cfg: RetrainConfig, store: LandingStore, challenger: str, after: str | None = None
) -> pd.DataFrame:
    """Labelled rows that both the champion and this challenger scored (same rows, paired).

    ``after`` is the newest day of the challenger's training data (its ``data_until`` tag): only
    prediction files and label batches of later days are read, so the read does not grow with
    history, and rows the challenger may have been trained on never count."""
    import pandas as pd

    def later(day: str) -> bool:
        return after is None or day > after

    folder = Path(store.workdir).joinpath(*PREDICTIONS_DIR)
    frames = []
    for path in sorted(p for p in folder.glob("*.parquet") if later(p.stem)):
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


def canary_tags(result, champion: str) -> dict[str, str]:
    """The verdict as registry tags on the challenger: promotion reads them, not this run."""
    return {
        "canary": "passed" if result.non_inferior else "failed",
        "canary.difference": f"{result.difference:.6f}",
        "canary.ci_low": f"{result.ci_low:.6f}",
        "canary.n_rows": str(result.n_rows),
        "canary.champion_version": champion,
    }


def compare(cfg: RetrainConfig, rows: pd.DataFrame, settings: Any) -> Any:
    """The canary's verdict on the paired shadow rows: DeLong (or the paired bootstrap) on AUC
    for binary, a paired non-inferiority test on per-row losses for the other tasks."""
    from retrain_assets.lib.release.canary import evaluate_canary_task
    from retrain_assets.lib.training.tasks import prediction_of

    if cfg.task == "binary":
        champion, classes = rows["champion_score"].to_numpy(), None
        challenger = rows["challenger_score"].to_numpy()
    else:
        champion, classes = prediction_of(rows, cfg.task, "champion_")
        challenger, challenger_classes = prediction_of(rows, cfg.task, "challenger_")
        if len(rows) and classes != challenger_classes:
            raise ValueError(
                f"the champion knows classes {classes} and the challenger {challenger_classes}:"
                " per-row log losses are not comparable; retrain on a window holding the same "
                "classes"
            )
    return evaluate_canary_task(
        cfg.task, rows["y"].to_numpy(), champion, challenger, settings,
        method=cfg.canary.method, classes=classes,
    )  # fmt: skip


def evaluate_challenger(
    cfg: RetrainConfig, store: LandingStore, registry: ModelRegistry
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    from retrain_assets.lib.release.canary import CanarySettings

    canary = cfg.canary
    with mlflow_errors(cfg.tracking_uri):
        challenger = registry.alias_version(names.CHALLENGER)
        champion = registry.alias_version(names.CHAMPION)
        if challenger is None or champion is None:
            raise refuse("no challenger (or no champion) to compare")
        trained_until = registry.version_tags(challenger).get("data_until")
        rows = shadow_rows(cfg, store, challenger, after=trained_until)
        settings = CanarySettings(
            min_rows=canary.min_rows, margin=canary.margin, confidence=canary.confidence
        )
        result = compare(cfg, rows, settings)
        if not result.non_inferior:
            # The blocking check below stops this run before promoted_model: drop it here, so
            # shadow scoring stops and the triggers may start a new cycle.
            registry.delete_alias(names.CHALLENGER)
        registry.tag_version(challenger, canary_tags(result, champion))
        metadata = {**result.to_metadata(), "challenger_version": challenger}
        yield dg.MaterializeResult(metadata={**metadata, "champion_version": champion})
        yield dg.AssetCheckResult(
            check_name=names.CANARY_CHECK,
            passed=bool(result.non_inferior),
            description=result.reason,
            metadata={**metadata, "margin": canary.margin, "min_rows": canary.min_rows},
        )
