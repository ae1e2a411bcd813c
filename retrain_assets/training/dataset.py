"""training_dataset: the rows one retraining cycle learns from, chosen by the training strategy,
with a time-ordered test set; versioned with DVC and behind the blocking data gate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.ingest.assets import target_summary
from retrain_assets.lib.files import write_parquet
from retrain_assets.lib.tables import markdown_table
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.mlflow import MlflowTracking, mlflow_errors
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.run_config import TrainingRunConfig

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd


def labelled_rows(cfg: RetrainConfig, store: LandingStore) -> pd.DataFrame:
    """Every stored production row that has a stored label, with the day it was observed."""
    import pandas as pd

    from retrain_assets.lib.training import fitting

    label_days = store.batch_days("labels")
    feature_days = store.batch_days("features")
    if not label_days or not feature_days:
        return pd.DataFrame()
    labels = pd.concat([store.read_batch("labels", d) for d in label_days], ignore_index=True)
    # A later label file for the same id corrects an earlier one.
    labels = labels.drop_duplicates(subset=[cfg.data.id_column], keep="last")
    features = pd.concat(
        [store.read_batch("features", d).assign(**{fitting.DAY: d}) for d in feature_days],
        ignore_index=True,
    )
    return fitting.join_labels(features, labels, cfg.data.id_column)


def choose_rows(
    cfg: RetrainConfig, run: TrainingRunConfig, store: LandingStore, registry: ModelRegistry
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(training rows, test rows, the strategy's parameters) for this cycle."""
    from retrain_assets.lib.training import fitting, strategies

    data = cfg.data
    strategy = run.strategy or cfg.training.strategy
    window = run.window_days or cfg.training.window_days
    half_life = run.half_life_days or cfg.training.half_life_days
    rows = fitting.assemble(
        store.read_reference(),
        labelled_rows(cfg, store),
        target_column=data.target_column,
        timestamp_column=data.timestamp_column,
        start_date=data.start_date,
        test_days=cfg.model.test_days,
        reference_test_share=cfg.model.reference_test_share,
    )
    champion = registry.alias_version(names.CHAMPION)
    since = registry.version_tags(champion).get("data_until") if champion else None
    train = strategies.training_rows(
        rows,
        strategy,
        window_days=window,
        half_life_days=half_life,
        since_day=since if strategy == "incremental" else None,
    )
    test = rows[rows[fitting.SPLIT] == "test"].assign(**{strategies.WEIGHT: 1.0})
    params = {
        "strategy": strategy,
        "strategy.window_days": window if strategy == "rolling_window" else "",
        "strategy.half_life_days": half_life if strategy == "weighted" else "",
        "strategy.since_day": since or "" if strategy == "incremental" else "",
    }
    return train, test, params


def data_gate_result(
    cfg: RetrainConfig, chosen: pd.DataFrame, expected_classes: list[str] | None = None
) -> dg.AssetCheckResult:
    """The blocking data gate; a multiclass set must hold every class the champion knows
    (``expected_classes``): a class that vanished from the window is named."""
    from retrain_assets.lib.training import data_gate

    gates = cfg.gates
    results = data_gate.check_training_set(
        chosen,
        id_column=cfg.data.id_column,
        features=cfg.data.features,
        settings=data_gate.GateSettings(
            min_rows=gates.min_rows,
            min_class_share=gates.min_class_share,
            max_null_rate=gates.max_null_rate,
        ),
        task=cfg.task,
        expected_classes=expected_classes,
    )
    table = markdown_table(
        ["rule", "passed", "figure", "threshold", "detail"],
        [
            (r.rule, "yes" if r.passed else "**no**", r.figure, r.threshold, r.detail)
            for r in results
        ],
    )
    failed = data_gate.summary(results)
    return dg.AssetCheckResult(
        check_name=names.DATA_GATE,
        passed=not failed,
        description=failed or "every data rule passed",
        metadata={
            "rules": dg.MetadataValue.md(table),
            **{f"{r.rule}": r.figure for r in results},
            "failed_rules": ", ".join(r.rule for r in results if not r.passed) or "none",
        },
    )


def champion_classes(registry: ModelRegistry) -> list[str] | None:
    """The classes of a multiclass champion (None without one, or for the other tasks)."""
    import json

    champion = registry.alias_version(names.CHAMPION)
    tag = registry.version_tags(champion).get(names.CLASSES_TAG) if champion else None
    return [str(c) for c in json.loads(tag)] if tag else None


def build_training_set(
    cfg: RetrainConfig,
    run: TrainingRunConfig,
    store: LandingStore,
    dvc: DvcRepository,
    mlflow: MlflowTracking,
    registry: ModelRegistry,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    import pandas as pd

    from retrain_assets.lib.training import fitting

    with mlflow_errors(cfg.tracking_uri):
        train, test, params = choose_rows(cfg, run, store, registry)
        chosen = pd.concat([train, test], ignore_index=True)
        path = store.path_for("training", "training_set.parquet")
        write_parquet(chosen, path)
        md5 = dvc.add(path)
        window = f"{train[fitting.DAY].min()}..{train[fitting.DAY].max()}"
        mlflow.tracker.log_params(
            {"data.dvc_md5": md5, "data.rows": len(chosen), "data.window": window, **params}
        )
        mlflow.tracker.set_tags({"dvc_md5": md5, "data_window": window})
        strategy = params["strategy"]
        value = {
            "path": str(path),
            "md5": md5,
            "rows": len(chosen),
            "window": window,
            "strategy": strategy,
            "data_until": str(train[fitting.DAY].max()),
        }
        yield dg.Output(
            value,
            metadata={
                "dvc_md5": md5,
                "strategy": strategy,
                "training_set_file": dg.MetadataValue.path(str(path)),
                "dagster/row_count": len(chosen),
                "train_rows": len(train),
                "test_rows": len(test),
                **target_summary(cfg.task, chosen[fitting.TARGET]),
                "window": window,
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(mlflow.run_id)),
            },
        )
        expected = champion_classes(registry) if cfg.task == "multiclass" else None
        yield data_gate_result(cfg, chosen, expected)
